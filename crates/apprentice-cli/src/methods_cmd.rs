//! `apprentice methods`: the distillation methods, their papers and hyper-parameters.

use apprentice::distill::loss::{KD_INFO, TRAINABLE_METHODS};
use apprentice::distill::methods::{METHODS, MethodInfo};

/// Prints every method with its defaults, saying which `distill.method` can select.
pub fn list() {
    let all: Vec<&MethodInfo> = std::iter::once(&KD_INFO).chain(METHODS).collect();
    for info in all {
        let status = if TRAINABLE_METHODS.contains(&info.name) {
            format!("distill.method = \"{}\"", info.name)
        } else {
            "loss verified; not yet selectable for training".to_string()
        };
        println!("{:<6} {} [{status}]", info.name, info.title);
        println!("       {}", info.paper);
        println!("       inputs: {}", info.inputs);
        for parameter in info.hyper_parameters {
            println!(
                "       {:<16} {:>8}  {}",
                parameter.key,
                format_default(parameter.default),
                parameter.meaning
            );
        }
        println!();
    }
}

fn format_default(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}
