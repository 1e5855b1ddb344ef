//! How good predictions are: accuracy and the confusion matrix for classes, RMSE, MAE and R² (in the
//! target's own units) for values.

use super::Targets;
use super::prep::{Prep, Task};
use crate::error::{Error, Result};

/// A model's figures on a set.
#[derive(Clone, Debug, PartialEq)]
pub enum Metrics {
    /// Classification (binary included).
    Classes {
        /// Fraction of samples whose predicted class is their label.
        accuracy: f32,
        /// `confusion[t][p]`: samples of class `t` predicted as `p`.
        confusion: Vec<Vec<usize>>,
        /// Class names.
        names: Vec<String>,
    },
    /// Regression, per target column.
    Values {
        /// Root mean squared error.
        rmse: Vec<f64>,
        /// Mean absolute error.
        mae: Vec<f64>,
        /// Coefficient of determination, `1 − SS_res/SS_tot` (`SS_tot` about the set's own mean).
        r2: Vec<f64>,
        /// Target names.
        names: Vec<String>,
    },
}

/// The class each row of model `outputs` (`[N, outputs]`) predicts: the arg-max of the logits (the
/// first maximum), or for one output `1` when the logit is positive (`σ(z) > ½`).
pub fn predicted_classes(outputs: &[f32], width: usize) -> Vec<u32> {
    if width == 1 {
        return outputs.iter().map(|&z| u32::from(z > 0.0)).collect();
    }
    outputs
        .chunks_exact(width.max(1))
        .map(|row| crate::cpu::argmax(row) as u32)
        .collect()
}

/// Each row's class probabilities from model `outputs` (`[N, width]`): the softmax of the logits, or
/// for one output `[1 − σ(z), σ(z)]` (the second class is the positive one). `[N, max(width, 2)]`.
pub fn probabilities(outputs: &[f32], width: usize) -> Vec<f32> {
    if width == 1 {
        return outputs
            .iter()
            .flat_map(|&z| {
                let p = crate::Activation::Sigmoid.forward(z);
                [1.0 - p, p]
            })
            .collect();
    }
    let mut p = vec![0.0; outputs.len()];
    for (z, row) in outputs
        .chunks_exact(width.max(1))
        .zip(p.chunks_exact_mut(width.max(1)))
    {
        crate::cpu::softmax_row(z, row);
    }
    p
}

impl Metrics {
    /// Scores raw model `outputs` (`[N, prep.outputs()]`, regression outputs still standardised) against
    /// `targets` in their own units.
    pub fn of_outputs(prep: &Prep, outputs: &[f32], targets: &Targets) -> Result<Metrics> {
        let width = prep.outputs();
        if outputs.len() != targets.len() * width {
            return Err(Error::shape(format!(
                "{} outputs for {} samples of {width}",
                outputs.len(),
                targets.len()
            )));
        }
        match (prep.task, targets) {
            (Task::Classify | Task::Binary, Targets::Classes { labels, names }) => Ok(
                Metrics::classes(&predicted_classes(outputs, width), labels, names),
            ),
            (Task::Regress, Targets::Values { values, names }) => {
                let mut predicted = outputs.to_vec();
                prep.outputs_to_targets(&mut predicted);
                Ok(Metrics::values(&predicted, values, names))
            }
            _ => Err(Error::Invalid(format!(
                "the targets do not suit the model's {} task",
                prep.task.name()
            ))),
        }
    }

    /// Accuracy and confusion matrix of `predicted` classes against `labels`.
    pub fn classes(predicted: &[u32], labels: &[u32], names: &[String]) -> Metrics {
        let c = names.len();
        let mut confusion = vec![vec![0; c]; c];
        let mut hits = 0;
        for (&p, &t) in predicted.iter().zip(labels) {
            if let Some(cell) = confusion
                .get_mut(t as usize)
                .and_then(|r| r.get_mut(p as usize))
            {
                *cell += 1;
            }
            hits += usize::from(p == t);
        }
        Metrics::Classes {
            accuracy: hits as f32 / labels.len().max(1) as f32,
            confusion,
            names: names.to_vec(),
        }
    }

    /// RMSE, MAE and R² of `predicted` against `truth`, both `[N, names.len()]`, computed in f64.
    pub fn values(predicted: &[f32], truth: &[f32], names: &[String]) -> Metrics {
        let t = names.len().max(1);
        let n = (truth.len() / t).max(1) as f64;
        let (mut se, mut ae, mut sum) = (vec![0f64; t], vec![0f64; t], vec![0f64; t]);
        for (p, y) in predicted.chunks_exact(t).zip(truth.chunks_exact(t)) {
            for j in 0..t {
                let e = f64::from(p[j]) - f64::from(y[j]);
                se[j] += e * e;
                ae[j] += e.abs();
                sum[j] += f64::from(y[j]);
            }
        }
        let mut ss_tot = vec![0f64; t];
        for y in truth.chunks_exact(t) {
            for j in 0..t {
                ss_tot[j] += (f64::from(y[j]) - sum[j] / n).powi(2);
            }
        }
        Metrics::Values {
            rmse: se.iter().map(|s| (s / n).sqrt()).collect(),
            mae: ae.iter().map(|a| a / n).collect(),
            r2: se
                .iter()
                .zip(&ss_tot)
                .map(|(s, tot)| if *tot > 0.0 { 1.0 - s / tot } else { f64::NAN })
                .collect(),
            names: names.to_vec(),
        }
    }

    /// The figures on one line: `accuracy 97.50%`, or `RMSE 0.612 MAE 0.471 R² 0.402` (per target
    /// where there are several).
    pub fn summary(&self) -> String {
        match self {
            Metrics::Classes { accuracy, .. } => format!("accuracy {:.2}%", accuracy * 100.0),
            Metrics::Values {
                rmse,
                mae,
                r2,
                names,
            } => (0..names.len())
                .map(|j| {
                    let who = if names.len() > 1 {
                        format!("{}: ", names[j])
                    } else {
                        String::new()
                    };
                    format!("{who}RMSE {:.4} MAE {:.4} R² {:.4}", rmse[j], mae[j], r2[j])
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// The confusion matrix as a text table (rows: true class, columns: predicted), or `None` for a
    /// regression.
    pub fn confusion_table(&self) -> Option<String> {
        let Metrics::Classes {
            confusion, names, ..
        } = self
        else {
            return None;
        };
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .chain(confusion.iter().flatten().map(|v| v.to_string().len()))
            .max()
            .unwrap_or(1)
            .max(4);
        let mut out = format!("{:>width$} | predicted\n", "true");
        out.push_str(&format!("{:>width$} |", ""));
        for n in names {
            out.push_str(&format!(" {n:>width$}"));
        }
        out.push('\n');
        for (n, row) in names.iter().zip(confusion) {
            out.push_str(&format!("{n:>width$} |"));
            for v in row {
                out.push_str(&format!(" {v:>width$}"));
            }
            out.push('\n');
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_figures_match_their_definitions() {
        let names = vec!["y".to_string()];
        // Errors 1, −1, 2, 0: MSE 6/4, MAE 1; truth mean 2.5, SS_tot 5.
        let m = Metrics::values(&[2.0, 1.0, 5.0, 4.0], &[1.0, 2.0, 3.0, 4.0], &names);
        let Metrics::Values { rmse, mae, r2, .. } = m else {
            panic!("values")
        };
        assert_eq!(rmse[0], 1.5f64.sqrt());
        assert_eq!(mae[0], 1.0);
        assert_eq!(r2[0], 1.0 - 6.0 / 5.0);
    }

    #[test]
    fn confusion_counts_true_rows_and_predicted_columns() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let m = Metrics::classes(&[0, 2, 2, 1], &[0, 2, 1, 1], &names);
        let Metrics::Classes {
            accuracy,
            confusion,
            ..
        } = &m
        else {
            panic!("classes")
        };
        assert_eq!(*accuracy, 0.75);
        assert_eq!(
            confusion,
            &vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert!(m.confusion_table().unwrap().contains("true"));
    }

    #[test]
    fn probabilities_are_the_softmax_or_the_sigmoid_and_its_complement() {
        let p = probabilities(&[0.0, 2.0_f32.ln()], 2);
        assert!(
            (p[0] - 1.0 / 3.0).abs() < 1e-7 && (p[1] - 2.0 / 3.0).abs() < 1e-7,
            "{p:?}"
        );
        let q = probabilities(&[0.0, 3.0_f32.ln()], 1);
        assert!(
            (q[0] - 0.5).abs() < 1e-7 && (q[1] - 0.5).abs() < 1e-7,
            "{q:?}"
        );
        assert!(
            (q[3] - 0.75).abs() < 1e-6 && (q[2] - 0.25).abs() < 1e-6,
            "{q:?}"
        );
    }

    #[test]
    fn one_output_is_a_binary_classifier_at_zero() {
        assert_eq!(
            predicted_classes(&[-0.1, 0.0, 0.3, f32::NAN], 1),
            vec![0, 0, 1, 0]
        );
        assert_eq!(predicted_classes(&[0.1, 0.3, 0.3, 0.2], 2), vec![1, 0]);
    }
}
