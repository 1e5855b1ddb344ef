// Learning curves on a canvas: loss on the left axis, accuracy (0–100%) on the right, steps along x.

const COLORS = { loss: "#c2410c", train: "#2563eb", test: "#15803d", grid: "#e3e6ec", text: "#5b6475" };

/**
 * Draws the series onto `canvas`.
 * @param {HTMLCanvasElement} canvas
 * @param {{loss: number[][], train: number[][], test: number[][], steps: number}} curves
 *   points as [step, value]; accuracies in [0, 1]
 */
export function drawChart(canvas, curves) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 48, right: 48, top: 12, bottom: 28 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";

  const lastStep = Math.max(1, curves.steps, ...curves.loss.map((p) => p[0]));
  const maxLoss = Math.max(0.1, ...curves.loss.map((p) => p[1]).filter(Number.isFinite)) * 1.05;
  const x = (step) => pad.left + (step / lastStep) * w;
  const yLoss = (v) => pad.top + h - (Math.min(v, maxLoss) / maxLoss) * h;
  const yAcc = (v) => pad.top + h - v * h;

  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.text;
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + (i / 4) * h;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(pad.left + w, y);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText((maxLoss * (1 - i / 4)).toFixed(2), pad.left - 6, y + 4);
    ctx.textAlign = "left";
    ctx.fillText(`${100 - i * 25}%`, pad.left + w + 6, y + 4);
  }
  ctx.textAlign = "center";
  for (let i = 0; i <= 4; i++) {
    ctx.fillText(String(Math.round((i / 4) * lastStep)), x((i / 4) * lastStep), height - 8);
  }

  const line = (points, y, color, dots = false) => {
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach(([s, v], i) => (i ? ctx.lineTo(x(s), y(v)) : ctx.moveTo(x(s), y(v))));
    ctx.stroke();
    if (dots) {
      for (const [s, v] of points) {
        ctx.beginPath();
        ctx.arc(x(s), y(v), 3.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  };
  line(curves.loss, yLoss, COLORS.loss);
  line(curves.train, yAcc, COLORS.train);
  line(curves.test, yAcc, COLORS.test, true);
}
