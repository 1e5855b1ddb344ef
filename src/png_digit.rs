//! A digit drawn in a PNG, read as MNIST's 28×28 grayscale bytes: colour averaged, alpha composited on
//! the drawing's background (black for light ink, as MNIST's; white for dark ink, `invert`), then
//! inverted for dark ink so the digit is light on black.

use std::path::Path;

use crate::error::{Error, Result};
use crate::mnist::SIDE;

/// Decodes `bytes` (the PNG file at `path`, named in errors) into `28·28` bytes, row-major.
pub fn decode(path: &Path, bytes: &[u8], invert: bool) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::Data {
        path: path.to_path_buf(),
        reason,
    };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a PNG: {e}")))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    if (width, height) != (SIDE, SIDE) {
        return Err(bad(format!(
            "the image is {width}×{height}; nabla predicts on {SIDE}×{SIDE} images"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad("the image is too large".into()))?;
    let mut buf = vec![0; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("corrupt PNG: {e}")))?;
    let channels = frame.color_type.samples();
    let pixels: Vec<u8> = buf[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|px| {
            let (color, alpha) = match channels {
                1 => (u32::from(px[0]), 255),
                2 => (u32::from(px[0]), u32::from(px[1])),
                3 => (
                    (u32::from(px[0]) + u32::from(px[1]) + u32::from(px[2])) / 3,
                    255,
                ),
                _ => (
                    (u32::from(px[0]) + u32::from(px[1]) + u32::from(px[2])) / 3,
                    u32::from(px[3]),
                ),
            };
            // A transparent pixel is the background the digit was drawn on: white under dark ink
            // (which inverts to MNIST's black), black under light ink.
            let background = if invert { 255 } else { 0 };
            let v = ((color * alpha + background * (255 - alpha) + 127) / 255) as u8;
            if invert { 255 - v } else { v }
        })
        .collect();
    if pixels.len() != SIDE * SIDE {
        return Err(bad(format!(
            "decoded {} pixels, expected {}",
            pixels.len(),
            SIDE * SIDE
        )));
    }
    Ok(pixels)
}
