//! `apprentice methods`: the distillation methods, their papers and hyper-parameters.

use apprentice::config::MethodName;
use apprentice::distill::method::MethodInfo;

/// Prints every method and scheme with its defaults and the config key that selects it.
pub fn list() {
    let all: Vec<&MethodInfo> = MethodName::all()
        .into_iter()
        .map(MethodName::info)
        .collect();
    println!(
        "Select one with distill.method = \"NAME\", or compare several in one run with distill.methods = [\"kd\", \"dkd\", ...]."
    );
    println!(
        "Settings go in [distill.NAME] tables (kd uses distill.temperature and distill.alpha)."
    );
    println!();
    for info in all {
        println!("{:<13} {}", info.name, info.title);
        println!("              {}", info.paper);
        println!("              inputs: {}", info.inputs);
        for parameter in info.hyper_parameters {
            println!(
                "              {:<24} {:>8}  {}",
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
