//! What every distillation method shares: clear errors for batches too small to compare
//! samples, mismatched batches and bad settings, and settings whose listed hyper-parameters are
//! their real defaults.

mod common;

use apprentice::backend::{class_indices, matrix};
use apprentice::distill::methods::{
    AttentionSettings, DistSettings, DkdSettings, FitNetSettings, MethodError, PktSettings,
    RkdSettings, SpSettings, dist_loss, dkd_loss, pkt_loss, rkd_loss, sp_loss,
};
use common::methods::training;

#[test]
fn methods_that_compare_samples_reject_a_batch_of_one() {
    let device = training();
    let one = || matrix(vec![0.5, -1.0, 2.0], 1, 3, &device);
    let results = [
        (
            "dist",
            dist_loss(one(), one(), &DistSettings::default()).map(|_| ()),
        ),
        (
            "rkd",
            rkd_loss(one(), one(), &RkdSettings::default()).map(|_| ()),
        ),
        (
            "pkt",
            pkt_loss(one(), one(), &PktSettings::default()).map(|_| ()),
        ),
        (
            "sp",
            sp_loss(&[(one(), one())], &SpSettings::default()).map(|_| ()),
        ),
    ];
    for (name, result) in results {
        match result {
            Err(MethodError::BatchTooSmall {
                method,
                needed: 2,
                got: 1,
                ..
            }) => assert_eq!(method, name),
            other => panic!("{name}: expected BatchTooSmall, got {other:?}"),
        }
    }
    // The per-sample methods are defined for a single sample.
    let dkd = dkd_loss(
        one(),
        one(),
        class_indices(&[1], &device),
        &DkdSettings::default(),
    );
    assert!(dkd.is_ok());
}

#[test]
fn mismatched_batches_and_bad_settings_are_errors() {
    let device = training();
    let two = matrix(vec![0.0; 6], 2, 3, &device);
    let three = matrix(vec![0.0; 9], 3, 3, &device);
    assert!(matches!(
        rkd_loss(two.clone(), three.clone(), &RkdSettings::default()),
        Err(MethodError::Shape { .. })
    ));
    assert!(matches!(
        dkd_loss(
            two.clone(),
            two.clone(),
            class_indices(&[0, 1, 2], &device),
            &DkdSettings::default()
        ),
        Err(MethodError::Shape { .. })
    ));
    let cold = DkdSettings {
        temperature: 0.0,
        ..DkdSettings::default()
    };
    let error = dkd_loss(
        two.clone(),
        two.clone(),
        class_indices(&[0, 1], &device),
        &cold,
    )
    .expect_err("T = 0");
    assert!(error.to_string().contains("temperature"), "{error}");
    let negative = DistSettings {
        gamma: -1.0,
        ..DistSettings::default()
    };
    assert!(matches!(
        dist_loss(two.clone(), two, &negative),
        Err(MethodError::Setting { .. })
    ));
    let fractional = AttentionSettings {
        p: 0.5,
        ..AttentionSettings::default()
    };
    assert!(fractional.validate().is_err());
}

// ------------------------------------------------------------------------------------ settings

/// The hyper-parameter tables that a listing prints are the settings' real defaults, and they
/// list every field.
#[test]
fn hyper_parameter_tables_match_the_defaults() {
    let defaults = [
        serde_json::to_value(DkdSettings::default()),
        serde_json::to_value(DistSettings::default()),
        serde_json::to_value(FitNetSettings::default()),
        serde_json::to_value(AttentionSettings::default()),
        serde_json::to_value(RkdSettings::default()),
        serde_json::to_value(PktSettings::default()),
        serde_json::to_value(SpSettings::default()),
    ];
    let mut names = std::collections::HashSet::new();
    let infos = [
        &DkdSettings::INFO,
        &DistSettings::INFO,
        &FitNetSettings::INFO,
        &AttentionSettings::INFO,
        &RkdSettings::INFO,
        &PktSettings::INFO,
        &SpSettings::INFO,
    ];
    for (info, value) in infos.into_iter().zip(defaults) {
        assert!(names.insert(info.name), "{} is listed twice", info.name);
        let value = value.expect("settings serialise");
        let fields = value.as_object().expect("settings are a table");
        assert_eq!(
            fields.len(),
            info.hyper_parameters.len(),
            "{}: every field is listed",
            info.name
        );
        for parameter in info.hyper_parameters {
            let default = fields
                .get(parameter.key)
                .and_then(|v| v.as_f64())
                .unwrap_or_else(|| panic!("{}: no field {}", info.name, parameter.key));
            assert_eq!(
                default, parameter.default,
                "{}.{}",
                info.name, parameter.key
            );
        }
    }
    assert_eq!(DkdSettings::describe().name, "dkd");
    assert_eq!(SpSettings::describe().hyper_parameters[0].default, 3000.0);
}

#[test]
fn settings_fill_defaults_and_reject_unknown_keys() {
    let dkd: DkdSettings = toml::from_str("beta = 2.0\nwarmup_epochs = 5").expect("valid");
    assert_eq!(
        dkd,
        DkdSettings {
            beta: 2.0,
            warmup_epochs: 5,
            ..DkdSettings::default()
        }
    );
    let rkd: RkdSettings = toml::from_str("").expect("empty is all defaults");
    assert_eq!(rkd, RkdSettings::default());
    let error = toml::from_str::<DistSettings>("tau = 4.0").expect_err("unknown key");
    assert!(error.to_string().contains("tau"), "{error}");
    let error = toml::from_str::<SpSettings>("weight = \"high\"").expect_err("wrong type");
    assert!(error.to_string().contains("weight"), "{error}");
}
