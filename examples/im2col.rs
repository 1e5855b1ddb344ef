//! Lesson 15, im2col: a convolution unrolled into one matrix product. Prints a 3×3 image, its columns
//! under a 2×2 window, a filter applied as one product, and the shapes of the book's examples.
//!
//! `cargo run --release --example im2col`

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::im2col;

fn lesson<B: Backend>(b: &B) -> anyhow::Result<()> {
    let small = im2col::small_example(b)?;
    println!("image (1 channel, 3×3):\n  1 2 3\n  4 5 6\n  7 8 9");
    let (rows, cols) = small.shape();
    println!("im2col under a 2×2 window, stride 1: {rows}×{cols}, one row per window position");
    for row in small.cols.chunks(cols) {
        println!("  {row:?}");
    }
    let filter = [1.0, 0.0, 0.0, -1.0];
    println!(
        "filter [[1, 0], [0, -1]] as a row {filter:?}; columns · filterᵀ = {:?} (each is x[i,j] − x[i+1,j+1])",
        im2col::convolve(b, &small, &filter)?
    );
    let [one, ten] = im2col::book_shapes(b)?;
    println!(
        "the book's shapes, 5×5 window over 3×7×7 images: 1 image → {one:?}, 10 images → {ten:?}"
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let (cpu, gpu) = support::backends();
    println!("— CPU —");
    lesson(&cpu)?;
    if let Some(gpu) = &gpu {
        println!("— GPU —");
        lesson(gpu)?;
    }
    Ok(())
}
