//! Every distillation method apprentice knows, registered once.
//!
//! The `methods!` macro turns the list at the bottom of this file into the `[distill]`
//! section of an experiment file ([`DistillConfig`]: the shared keys plus one settings table
//! per method), the typed method names the file may select ([`MethodName`]), and the lookups
//! from a name to its description, validation and [`Method`]. Adding a method is one module under
//! [`super::methods`] whose settings implement [`MethodSettings`], plus its line below.

use serde::{Deserialize, Serialize};

use super::method::{Method, MethodInfo, MethodSettings, Shared, ValidationContext};
use super::methods;
use super::objective::FeaturePairing;
use super::record::Transfer;
use super::temperature::{TemperatureSetting, default_auto_grid};

fn default_method() -> MethodName {
    MethodName::Kd
}
fn default_temperature() -> TemperatureSetting {
    TemperatureSetting::Fixed(4.0)
}
fn default_alpha() -> f64 {
    0.5
}
fn default_transfer() -> Vec<Transfer> {
    vec![Transfer::All]
}

/// Generates [`DistillConfig`], [`MethodName`] and their lookups from one line per method:
/// `Variant "name" => key: SettingsType`, where `key` is the method's `[distill.<key>]` table.
macro_rules! methods {
    ($($variant:ident $name:literal => $key:ident : $settings:ty),+ $(,)?) => {
        /// A method an experiment file can select, by its name there.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MethodName {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
        }

        /// Every method name, in listing order.
        pub const METHOD_NAMES: &[&str] = &[$($name),+];

        impl MethodName {
            /// Its name in experiment files and results.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(MethodName::$variant => $name,)+
                }
            }

            /// The method of `name`, if there is one.
            pub fn parse(name: &str) -> Option<MethodName> {
                match name {
                    $($name => Some(MethodName::$variant),)+
                    _ => None,
                }
            }

            /// Its description (paper, inputs, hyper-parameters).
            pub fn info(self) -> &'static MethodInfo {
                match self {
                    $(MethodName::$variant => <$settings as MethodSettings>::INFO,)+
                }
            }

            /// Every method, in listing order.
            pub fn all() -> Vec<MethodName> {
                vec![$(MethodName::$variant),+]
            }
        }

        /// The distillation method(s) and the settings of each (`[distill]`).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct DistillConfig {
            /// The method; `methods` overrides it.
            #[serde(default = "default_method")]
            pub method: MethodName,
            /// Several methods compared in one run, on the same data, seeds and student
            /// initialisation; one table row per method.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub methods: Option<Vec<MethodName>>,
            /// Softening temperature T of `kd` and of the methods built on it: a number, or
            /// `"auto"` to choose it per seed from the student's supervision complexity of the
            /// teacher's targets.
            #[serde(default = "default_temperature")]
            pub temperature: TemperatureSetting,
            /// The temperatures `"auto"` chooses from.
            #[serde(default = "default_auto_grid")]
            pub auto_temperatures: Vec<f64>,
            /// Weight α of `kd`'s hard-label cross-entropy (the soft term gets 1 − α).
            #[serde(default = "default_alpha")]
            pub alpha: f64,
            /// Transfer sets to run when a label fraction is below 1 (with all labels they
            /// coincide).
            #[serde(default = "default_transfer")]
            pub transfer: Vec<Transfer>,
            /// Which features the feature methods compare.
            #[serde(default)]
            pub features: FeaturePairing,
            $(
                #[doc = concat!("Settings of `", $name, "` (`[distill.", stringify!($key), "]`).")]
                #[serde(default, skip_serializing_if = "MethodSettings::is_default")]
                pub $key: $settings,
            )+
        }

        impl Default for DistillConfig {
            fn default() -> Self {
                Self {
                    method: default_method(),
                    methods: None,
                    temperature: default_temperature(),
                    auto_temperatures: default_auto_grid(),
                    alpha: default_alpha(),
                    transfer: default_transfer(),
                    features: FeaturePairing::default(),
                    $($key: <$settings>::default(),)+
                }
            }
        }

        impl DistillConfig {
            /// Checks the settings of `method` against the experiment.
            pub fn validate_method(
                &self,
                method: MethodName,
                context: &ValidationContext<'_>,
            ) -> Result<(), String> {
                match method {
                    $(MethodName::$variant => MethodSettings::validate(&self.$key, context),)+
                }
            }

            /// How often the teacher must keep a checkpoint along its training for `method`.
            pub fn snapshots_for(&self, method: MethodName) -> Option<usize> {
                match method {
                    $(MethodName::$variant => MethodSettings::teacher_snapshots_every(&self.$key),)+
                }
            }

            /// The method of `method` for one seed.
            pub fn build(&self, method: MethodName, shared: &Shared) -> Box<dyn Method> {
                match method {
                    $(MethodName::$variant => MethodSettings::build(&self.$key, shared),)+
                }
            }
        }
    };
}

impl Serialize for MethodName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MethodName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        MethodName::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown method {name:?}; expected one of: {}",
                METHOD_NAMES.join(", ")
            ))
        })
    }
}

impl std::fmt::Display for MethodName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DistillConfig {
    /// The methods this run compares, in order.
    pub fn method_list(&self) -> Vec<MethodName> {
        match &self.methods {
            Some(methods) => methods.clone(),
            None => vec![self.method],
        }
    }

    /// How often the teacher keeps a checkpoint along its training: the most frequent any
    /// configured method asks for (`None`: no method learns from them).
    pub fn teacher_snapshots_every(&self) -> Option<usize> {
        self.method_list()
            .into_iter()
            .filter_map(|method| self.snapshots_for(method))
            .min()
    }

    /// The settings every method shares, with the temperature resolved to `temperature`.
    pub fn shared(&self, temperature: f64) -> Shared {
        Shared {
            temperature,
            alpha: self.alpha,
            features: self.features.clone(),
        }
    }

    /// The methods of one seed, built once its temperature is a number.
    pub fn build_all(&self, temperature: f64) -> Vec<Box<dyn Method>> {
        let shared = self.shared(temperature);
        self.method_list()
            .into_iter()
            .map(|method| self.build(method, &shared))
            .collect()
    }
}

methods! {
    Kd "kd" => kd: methods::kd::KdSettings,
    Dkd "dkd" => dkd: methods::dkd::DkdSettings,
    Dist "dist" => dist: methods::dist::DistSettings,
    LogitStd "logit-std" => logit_std: methods::logit_std::LogitStdSettings,
    FitNet "fitnet" => fitnet: methods::fitnet::FitNetSettings,
    At "at" => at: methods::attention::AttentionSettings,
    Rkd "rkd" => rkd: methods::rkd::RkdSettings,
    Pkt "pkt" => pkt: methods::pkt::PktSettings,
    Sp "sp" => sp: methods::sp::SpSettings,
    BornAgain "born-again" => born_again: methods::born_again::BornAgainSettings,
    Dml "dml" => dml: methods::dml::DmlSettings,
    MultiTeacher "multi-teacher" => multi_teacher: methods::multi_teacher::MultiTeacherSettings,
    Ta "ta" => assistant: methods::ta::AssistantSettings,
    Online "online" => online: methods::online::OnlineSettings,
}
