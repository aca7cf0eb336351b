//! The distillation temperature as an experiment file gives it: a number, or `"auto"`.

use serde::{Deserialize, Serialize};

/// A temperature, or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TemperatureSetting {
    /// This value.
    Fixed(f64),
    /// Chosen by the run, per seed, from the student's supervision complexity of the teacher's
    /// targets.
    Auto,
}

impl TemperatureSetting {
    /// The number, when one was given; `None` for `"auto"`, which only a run can resolve
    /// (per seed, before any method is built).
    pub fn fixed(&self) -> Option<f64> {
        match self {
            TemperatureSetting::Fixed(value) => Some(*value),
            TemperatureSetting::Auto => None,
        }
    }
}

impl Serialize for TemperatureSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TemperatureSetting::Fixed(value) => serializer.serialize_f64(*value),
            TemperatureSetting::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for TemperatureSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TemperatureSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a positive number or \"auto\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(TemperatureSetting::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TemperatureSetting::Fixed(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TemperatureSetting::Fixed(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "auto" {
                    Ok(TemperatureSetting::Auto)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The temperatures `"auto"` chooses from by default.
pub fn default_auto_grid() -> Vec<f64> {
    vec![1.0, 2.0, 4.0, 8.0, 16.0]
}
