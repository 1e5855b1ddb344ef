//! Lesson 1, perceptrons: AND, NAND and OR as single perceptrons with hand-set weights, XOR as two
//! layers of them, and why no single perceptron computes XOR.
//!
//! `cargo run --release --example perceptron`

#[allow(dead_code)]
mod support;

use nabla::curriculum::perceptron::{
    AND, INPUTS, NAND, OR, XOR_TABLE, count_separating, learn, xor,
};
use nabla::{Backend, Result};

/// Prints a truth table with one output column per backend.
fn table(name: &str, columns: &[(&str, [f32; 4])]) {
    println!("\n{name}");
    let heads: Vec<&str> = columns.iter().map(|c| c.0).collect();
    println!("  x1 x2 | {}", heads.join(" "));
    for (row, x) in INPUTS.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|(head, out)| format!("{:>w$}", out[row], w = head.len()))
            .collect();
        println!("   {}  {} | {}", x[0], x[1], cells.join(" "));
    }
}

/// The four tables (AND, NAND, OR, XOR) computed on `b`.
fn gates<B: Backend>(b: &B) -> Result<[[f32; 4]; 4]> {
    Ok([
        AND.truth_table(b)?,
        NAND.truth_table(b)?,
        OR.truth_table(b)?,
        xor(b)?,
    ])
}

fn main() -> anyhow::Result<()> {
    let (cpu, gpu) = support::backends();
    let mut columns = vec![("CPU", gates(&cpu)?)];
    if let Some(gpu) = &gpu {
        columns.insert(0, ("GPU", gates(gpu)?));
    }
    let names = [
        format!("AND: w = {:?}, b = {}", AND.weights, AND.bias),
        format!("NAND: w = {:?}, b = {}", NAND.weights, NAND.bias),
        format!("OR: w = {:?}, b = {}", OR.weights, OR.bias),
        "XOR = AND(NAND(x), OR(x)): two layers".to_string(),
    ];
    for (g, name) in names.iter().enumerate() {
        let cols: Vec<(&str, [f32; 4])> = columns.iter().map(|(h, t)| (*h, t[g])).collect();
        table(name, &cols);
    }

    println!("\nOne layer cannot do XOR:");
    let (and, errors) = learn([0.0, 0.0, 0.0, 1.0], 20, 0.1);
    println!(
        "- the perceptron learning rule finds AND within 20 passes: w = {:?}, b = {:.1}, {errors} \
         errors in the last pass;",
        and.weights, and.bias
    );
    let (p, errors) = learn(XOR_TABLE, 1000, 0.1);
    println!(
        "- on XOR it never settles: after 1000 passes w = {:?}, b = {:.1}, still {errors} errors in \
         the last pass;",
        p.weights, p.bias
    );
    let divisions = 20;
    let (and_count, tried) = count_separating([0.0, 0.0, 0.0, 1.0], divisions);
    let (xor_count, _) = count_separating(XOR_TABLE, divisions);
    println!(
        "- of the {tried} perceptrons with w1, w2, b in {{k/{divisions}}} over [-1, 1], {and_count} \
         compute AND and {xor_count} compute XOR."
    );
    println!("No line separates {{(1,0), (0,1)}} from {{(0,0), (1,1)}}: XOR needs a hidden layer.");
    Ok(())
}
