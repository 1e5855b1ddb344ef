//! Backprop on a computational graph: each node computes forward and, given the gradient of the output,
//! returns the gradients of its inputs (the chain rule, one node at a time).
//!
//! The lesson's shopping example: apples at 100 each, bought by the count, with 10% tax.

/// A multiply node `z = x·y`: backward sends `dz·y` to x and `dz·x` to y, so it remembers its inputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mul {
    x: f64,
    y: f64,
}

impl Mul {
    /// `x·y`, remembering both.
    pub fn forward(&mut self, x: f64, y: f64) -> f64 {
        (self.x, self.y) = (x, y);
        x * y
    }

    /// `(dz·y, dz·x)`.
    pub fn backward(&self, dz: f64) -> (f64, f64) {
        (dz * self.y, dz * self.x)
    }
}

/// An add node `z = x + y`: backward passes `dz` to both inputs unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Add;

impl Add {
    /// `x + y`.
    pub fn forward(&mut self, x: f64, y: f64) -> f64 {
        x + y
    }

    /// `(dz, dz)`.
    pub fn backward(&self, dz: f64) -> (f64, f64) {
        (dz, dz)
    }
}

/// The gradients of the total price with respect to every input of [`apples`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppleGradients {
    /// ∂price/∂(apple price).
    pub apple: f64,
    /// ∂price/∂(apple count).
    pub apple_count: f64,
    /// ∂price/∂tax.
    pub tax: f64,
}

/// `price = apple · count · tax`, forward then backward from d(price) = 1.
pub fn apples(apple: f64, count: f64, tax: f64) -> (f64, AppleGradients) {
    let (mut buy, mut taxed) = (Mul::default(), Mul::default());
    let price = taxed.forward(buy.forward(apple, count), tax);
    let (d_subtotal, d_tax) = taxed.backward(1.0);
    let (d_apple, d_count) = buy.backward(d_subtotal);
    (
        price,
        AppleGradients {
            apple: d_apple,
            apple_count: d_count,
            tax: d_tax,
        },
    )
}

/// The gradients of [`apples_and_oranges`]' total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BasketGradients {
    /// ∂price/∂(apple price).
    pub apple: f64,
    /// ∂price/∂(apple count).
    pub apple_count: f64,
    /// ∂price/∂(orange price).
    pub orange: f64,
    /// ∂price/∂(orange count).
    pub orange_count: f64,
    /// ∂price/∂tax.
    pub tax: f64,
}

/// `price = (apple·apples + orange·oranges) · tax`, forward then backward.
pub fn apples_and_oranges(
    apple: f64,
    apples: f64,
    orange: f64,
    oranges: f64,
    tax: f64,
) -> (f64, BasketGradients) {
    let (mut buy_apples, mut buy_oranges, mut sum, mut taxed) =
        (Mul::default(), Mul::default(), Add, Mul::default());
    let subtotal = sum.forward(
        buy_apples.forward(apple, apples),
        buy_oranges.forward(orange, oranges),
    );
    let price = taxed.forward(subtotal, tax);
    let (d_subtotal, d_tax) = taxed.backward(1.0);
    let (d_apples_cost, d_oranges_cost) = sum.backward(d_subtotal);
    let (d_apple, d_apple_count) = buy_apples.backward(d_apples_cost);
    let (d_orange, d_orange_count) = buy_oranges.backward(d_oranges_cost);
    (
        price,
        BasketGradients {
            apple: d_apple,
            apple_count: d_apple_count,
            orange: d_orange,
            orange_count: d_orange_count,
            tax: d_tax,
        },
    )
}
