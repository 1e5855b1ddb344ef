//! Lesson 5, computational graphs: multiply and add nodes, forward then backward, on the lesson's
//! shopping examples.
//!
//! `cargo run --release --example graph`

use nabla::curriculum::graph::{apples, apples_and_oranges};

fn main() {
    let (price, g) = apples(100.0, 2.0, 1.1);
    println!("2 apples at 100 with tax 1.1:");
    println!("  forward:  price = 100 × 2 × 1.1 = {price:.1}");
    println!(
        "  backward: ∂price/∂apple = {:.1}, ∂price/∂count = {:.1}, ∂price/∂tax = {:.1}",
        g.apple, g.apple_count, g.tax
    );

    let (price, g) = apples_and_oranges(100.0, 2.0, 150.0, 3.0, 1.1);
    println!("2 apples at 100 and 3 oranges at 150 with tax 1.1:");
    println!("  forward:  price = (100 × 2 + 150 × 3) × 1.1 = {price:.1}");
    println!(
        "  backward: ∂apple = {:.1}, ∂apples = {:.1}, ∂orange = {:.1}, ∂oranges = {:.1}, ∂tax = {:.1}",
        g.apple, g.apple_count, g.orange, g.orange_count, g.tax
    );
    println!(
        "A multiply node sends back the upstream gradient times the other input; an add node passes \
         it through unchanged."
    );
}
