// A digit drawn on a canvas, prepared as MNIST's digits were: the ink's bounding box scaled so that its
// longer side is 20 pixels (aspect kept, pixels averaged), then placed in a 28×28 field so that its
// centre of mass falls on the centre. Ink is 255 on a background of 0.

const SIDE = 28;
const BOX = 20;

/** The canvas's ink (its red channel, white strokes on black) as one byte per pixel. */
function inkOf(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const ink = new Uint8Array(width * height);
  for (let i = 0; i < ink.length; i++) ink[i] = rgba[4 * i];
  return ink;
}

/** The smallest box holding every pixel above `threshold`, or null for an empty canvas. */
function boundingBox(ink, width, height, threshold = 16) {
  let [left, top, right, bottom] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] > threshold) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  return right < 0 ? null : { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/** The mean of each pixel's source area: `src` (w×h) shrunk by box averaging into `dw`×`dh`. */
function shrink(src, w, box, dw, dh) {
  const out = new Float32Array(dw * dh);
  const sx = box.width / dw;
  const sy = box.height / dh;
  // Rounding may put a window's far edge a hair past the box; never read past it.
  const [bottom, right] = [box.top + box.height, box.left + box.width];
  for (let y = 0; y < dh; y++) {
    const y0 = box.top + y * sy;
    const y1 = y0 + sy;
    for (let x = 0; x < dw; x++) {
      const x0 = box.left + x * sx;
      const x1 = x0 + sx;
      let sum = 0;
      let area = 0;
      for (let py = Math.floor(y0); py < Math.min(Math.ceil(y1), bottom); py++) {
        const wy = Math.min(py + 1, y1) - Math.max(py, y0);
        for (let px = Math.floor(x0); px < Math.min(Math.ceil(x1), right); px++) {
          const wx = Math.min(px + 1, x1) - Math.max(px, x0);
          sum += src[py * w + px] * wx * wy;
          area += wx * wy;
        }
      }
      out[y * dw + x] = area > 0 ? sum / area : 0;
    }
  }
  return out;
}

/**
 * The canvas's drawing as MNIST's 28×28 bytes, or null when nothing is drawn.
 * @param {HTMLCanvasElement} canvas
 * @returns {Uint8Array | null}
 */
export function mnistPixels(canvas) {
  const { width, height } = canvas;
  const ink = inkOf(canvas);
  const box = boundingBox(ink, width, height);
  if (!box) return null;
  const scale = BOX / Math.max(box.width, box.height);
  const dw = Math.max(1, Math.round(box.width * scale));
  const dh = Math.max(1, Math.round(box.height * scale));
  const small = shrink(ink, width, box, dw, dh);
  // Centre of mass of the shrunk digit, in its own coordinates.
  let [mass, cx, cy] = [0, 0, 0];
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const v = small[y * dw + x];
      mass += v;
      cx += v * (x + 0.5);
      cy += v * (y + 0.5);
    }
  }
  const ox = Math.round(SIDE / 2 - cx / mass);
  const oy = Math.round(SIDE / 2 - cy / mass);
  const pixels = new Uint8Array(SIDE * SIDE);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const [tx, ty] = [x + ox, y + oy];
      if (tx >= 0 && tx < SIDE && ty >= 0 && ty < SIDE) {
        pixels[ty * SIDE + tx] = Math.min(255, Math.round(small[y * dw + x]));
      }
    }
  }
  return pixels;
}

/** Draws 28×28 bytes onto `canvas`, one block per pixel. */
export function showPixels(canvas, pixels) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = pixels ? pixels[i] : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  const tile = document.createElement("canvas");
  tile.width = tile.height = SIDE;
  tile.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
}
