//! A binary image classifier trained from a folder of RGB photos, as the course's "cat or not" one
//! is, on pictures this lesson paints itself: 64×64 colour images of stripes, horizontal or vertical,
//! in random colours, widths and positions, with noise. Whether a picture's stripes run across or
//! down is a matter of how neighbouring pixels relate, not of any one pixel's colour, so a single
//! neuron on the pixels (logistic regression) does little better than a coin while networks with
//! hidden layers learn it.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::folder::encode_png;
use crate::error::{Error, Result};

/// The picture's side, in pixels.
pub const SIDE: usize = 64;

/// The two classes, in the order the folder reader sorts them (the second is the positive class).
pub const CLASSES: [&str; 2] = ["horizontal", "vertical"];

/// One picture, channel-last RGB bytes (`[SIDE, SIDE, 3]`, as a PNG stores them): stripes across
/// (`vertical` false) or down, of a random period (6–16 pixels) and phase, in two random colours, with
/// ±24 of uniform noise per channel.
pub fn paint(rng: &mut StdRng, vertical: bool) -> Vec<u8> {
    let period = rng.random_range(6..=16usize);
    let phase = rng.random_range(0..period);
    let mut colour = || [0; 3].map(|_: u8| rng.random_range(0..=255u8));
    let (a, b) = (colour(), colour());
    let mut rgb = Vec::with_capacity(SIDE * SIDE * 3);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let along = if vertical { x } else { y };
            let c = if (along + phase) % period < period / 2 {
                a
            } else {
                b
            };
            for v in c {
                let noisy = i32::from(v) + rng.random_range(-24..=24);
                rgb.push(noisy.clamp(0, 255) as u8);
            }
        }
    }
    rgb
}

/// Writes `dir/train/<class>/NNN.png` (`train` per class) and `dir/test/<class>/NNN.png` (`test` per
/// class), seeded: the layout `nabla train --data DIR` reads with its own test split.
pub fn write_folder(dir: &Path, train: usize, test: usize, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    for (part, count) in [("train", train), ("test", test)] {
        for (k, class) in CLASSES.iter().enumerate() {
            let folder = dir.join(part).join(class);
            std::fs::create_dir_all(&folder).map_err(|cause| Error::Io {
                path: folder.clone(),
                cause,
            })?;
            for i in 0..count {
                let rgb = paint(&mut rng, k == 1);
                let path = folder.join(format!("{i:03}.png"));
                let png = encode_png(SIDE as u32, SIDE as u32, png::ColorType::Rgb, &rgb)?;
                crate::checkpoint::write_atomically(&path, &png)?;
            }
        }
    }
    Ok(())
}
