//! Distillation from a transformer teacher's inner layers into a transformer student, as an
//! objective of a text run: logit KD plus weighted losses between their hidden states,
//! attention distributions or value relations (`[[distill.layers]]` entries, each one more
//! student per transformer architecture, compared with plain logit KD).
//!
//! The losses themselves are in [`super::losses`], each checked against a numpy reference
//! and by finite differences; this module says which layers they compare, checks that the
//! two models' shapes allow it, and adds them up for one batch.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::bert::{Bert, BertConfig, BertDropout, BertOutput};
use super::error::TextError;
use super::losses::attention::attention_kl;
use super::losses::cosine::cosine_hidden;
use super::losses::hidden::{hidden_mse, projection};
use super::losses::layer_map::LayerMap;
use super::losses::value_relation::value_relation_kl;
use super::student_kind::StudentKind;

/// Which inner-layer loss an entry adds to logit KD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerLossKind {
    /// TinyBERT's hidden-state MSE, through a learned projection when the widths differ.
    Hidden,
    /// KL between attention distributions (TinyBERT, MiniLM); needs equal head counts.
    Attention,
    /// MiniLM's value-relation KL, the values re-split into `heads` relation heads.
    ValueRelation,
    /// DistilBERT's cosine loss on hidden states; needs equal widths.
    Cosine,
}

impl LayerLossKind {
    /// The name used in the config and in student names (`value-relation`).
    pub fn name(self) -> &'static str {
        match self {
            LayerLossKind::Hidden => "hidden",
            LayerLossKind::Attention => "attention",
            LayerLossKind::ValueRelation => "value-relation",
            LayerLossKind::Cosine => "cosine",
        }
    }

    /// Whether it compares attention-side tensors of a layer (no layer 0: the embeddings
    /// have no attention).
    fn reads_attention(self) -> bool {
        matches!(
            self,
            LayerLossKind::Attention | LayerLossKind::ValueRelation
        )
    }

    /// The layers compared when the entry gives no `map`: TinyBERT's uniform map for hidden
    /// states, the last layers for the others (MiniLM's attention and value transfer,
    /// DistilBERT's cosine on the output).
    fn default_map(self) -> LayerMapSpec {
        match self {
            LayerLossKind::Hidden => LayerMapSpec::Named(NamedMap::Uniform),
            _ => LayerMapSpec::Named(NamedMap::Last),
        }
    }
}

/// A named layer map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamedMap {
    /// Student layer `m` from teacher layer `m × teacher / student`, embeddings from embeddings.
    Uniform,
    /// The last layer from the last layer.
    Last,
}

/// Which teacher layer teaches which student layer: `"uniform"`, `"last"`, or explicit
/// `[[student, teacher], ...]` pairs (layer 0 is the embeddings' output, `k` the output, or
/// the attention, of encoder layer `k`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerMapSpec {
    /// `uniform` or `last`.
    Named(NamedMap),
    /// Explicit pairs.
    Pairs(Vec<(usize, usize)>),
}

/// One `[[distill.layers]]` entry: a student trained by logit KD plus this loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerLossConfig {
    /// The inner-layer loss.
    pub loss: LayerLossKind,
    /// Its weight beside the KD loss.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// The layers it compares; absent: the loss's usual map (see [`LayerLossKind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<LayerMapSpec>,
    /// Relation heads of `value-relation` (MiniLMv2); absent: the teacher's head count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// The transformer students that learn with it (`shallow`, `narrow`); absent: each one
    /// in `students.kinds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub students: Option<Vec<StudentKind>>,
    /// Two stages instead of one summed loss (TinyBERT's task distillation): the first
    /// `first_epochs` epochs learn from this loss alone, the rest from logit KD alone, each
    /// stage with its own optimiser and warm-up and decay, as two fine-tunings. Absent: the
    /// loss is added to KD in every epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_epochs: Option<usize>,
}

impl LayerLossConfig {
    /// Whether a student of architecture `kind` learns with this loss.
    pub fn teaches(&self, kind: StudentKind) -> bool {
        self.students
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }

    /// The name of the student of architecture `kind` this entry trains: `narrow-kd-hidden`
    /// (summed with KD), `narrow-hidden-then-kd` (two stages), with `-w<weight>` appended
    /// when the weight is not 1.
    pub fn student_name(&self, kind: StudentKind) -> String {
        let (kind, loss) = (kind.name(), self.loss.name());
        let base = match self.first_epochs {
            None => format!("{kind}-kd-{loss}"),
            Some(_) => format!("{kind}-{loss}-then-kd"),
        };
        if self.weight == 1.0 {
            base
        } else {
            format!("{base}-w{}", self.weight)
        }
    }

    /// The method named in the results: `kd+hidden` (summed), `hidden,kd` (two stages).
    pub fn method(&self) -> &'static str {
        use LayerLossKind::{Attention, Cosine, Hidden, ValueRelation};
        match (self.loss, self.first_epochs.is_some()) {
            (Hidden, false) => "kd+hidden",
            (Attention, false) => "kd+attention",
            (ValueRelation, false) => "kd+value-relation",
            (Cosine, false) => "kd+cosine",
            (Hidden, true) => "hidden,kd",
            (Attention, true) => "attention,kd",
            (ValueRelation, true) => "value-relation,kd",
            (Cosine, true) => "cosine,kd",
        }
    }
}

/// What a student of a `[[distill.layers]]` entry learns from in one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerPhase {
    /// Logit KD plus the inner-layer loss (an entry without `first_epochs`).
    Both,
    /// The inner-layer loss alone (the first stage).
    LayersAlone,
    /// Logit KD alone (the second stage; the teacher's encoder does not run).
    KdAlone,
}

fn default_weight() -> f64 {
    1.0
}

/// Checks `[[distill.layers]]` without the models, against the run's student architectures
/// `kinds`: weights, `heads` only where it means something, students that are transformers
/// of the run, one entry per loss (each names a student). Messages name the entry.
pub fn validate_layer_losses(
    entries: &[LayerLossConfig],
    kinds: &[StudentKind],
) -> Result<(), String> {
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("distill.layers[{i}] ({})", entry.loss.name());
        let transformers = [StudentKind::Shallow, StudentKind::Narrow];
        let taught: Vec<StudentKind> = transformers
            .into_iter()
            .filter(|k| kinds.contains(k) && entry.teaches(*k))
            .collect();
        if let Some(kind) = entry
            .students
            .iter()
            .flatten()
            .find(|k| !transformers.contains(k) || !kinds.contains(k))
        {
            return Err(format!(
                "{key}.students: {:?} is not a transformer student of this run; expected \
                 \"shallow\" or \"narrow\" from students.kinds",
                kind.name()
            ));
        }
        if taught.is_empty() {
            return Err(format!(
                "{key}: inner-layer losses train transformer students; expected \"shallow\" or \
                 \"narrow\" in students.kinds"
            ));
        }
        if !(entry.weight.is_finite() && entry.weight > 0.0) {
            return Err(format!(
                "{key}.weight: expected a positive number, found {}",
                entry.weight
            ));
        }
        match (entry.loss, entry.heads) {
            (LayerLossKind::ValueRelation, Some(0)) => {
                return Err(format!("{key}.heads: expected at least 1"));
            }
            (LayerLossKind::ValueRelation, _) | (_, None) => {}
            (_, Some(_)) => {
                return Err(format!(
                    "{key}.heads: only a setting of loss \"value-relation\""
                ));
            }
        }
        if let Some(LayerMapSpec::Pairs(pairs)) = &entry.map
            && pairs.is_empty()
        {
            return Err(format!(
                "{key}.map: expected at least one [student, teacher] pair"
            ));
        }
        if entry.first_epochs == Some(0) {
            return Err(format!(
                "{key}.first_epochs: expected at least 1 (leave it out to add the loss to KD in \
                 every epoch)"
            ));
        }
        for kind in &taught {
            let name = entry.student_name(*kind);
            if entries[..i]
                .iter()
                .any(|e| e.teaches(*kind) && e.student_name(*kind) == name)
            {
                return Err(format!(
                    "{key}: a second entry that trains student {name:?}; entries for the same \
                     loss need another weight or first_epochs"
                ));
            }
        }
    }
    Ok(())
}

/// One loss resolved against a student and a teacher.
#[derive(Debug, Clone)]
struct ResolvedLoss {
    kind: LayerLossKind,
    weight: f64,
    map: LayerMap,
    relation_heads: usize,
    first_epochs: Option<usize>,
}

/// A teacher's encoder and the inner-layer loss a student learns from it, checked against
/// both shapes; the teacher runs with gradients off on the student's training device.
#[derive(Clone)]
pub struct LayerTeacher {
    bert: Bert,
    loss: ResolvedLoss,
    student_width: usize,
    teacher_width: usize,
}

impl std::fmt::Debug for LayerTeacher {
    // The teacher's weights say nothing useful in a message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerTeacher")
            .field("loss", &self.loss)
            .field("student_width", &self.student_width)
            .field("teacher_width", &self.teacher_width)
            .finish_non_exhaustive()
    }
}

impl LayerTeacher {
    /// Resolves `entry` (`distill.layers[index]`) for a student of shape `student` learning
    /// from `teacher` (shape `teacher_config`), with the teacher copied to `device` (the
    /// training device). Errors name the entry and what does not fit.
    pub fn new(
        entry: &LayerLossConfig,
        index: usize,
        teacher: &Bert,
        teacher_config: &BertConfig,
        student: &BertConfig,
        device: &Device,
    ) -> Result<Self, TextError> {
        let key = format!("distill.layers[{index}] ({})", entry.loss.name());
        let (s_layers, t_layers) = (student.num_hidden_layers, teacher_config.num_hidden_layers);
        let map = match entry.map.clone().unwrap_or(entry.loss.default_map()) {
            LayerMapSpec::Named(NamedMap::Uniform) => LayerMap::uniform(s_layers, t_layers),
            LayerMapSpec::Named(NamedMap::Last) => LayerMap::last(s_layers, t_layers),
            LayerMapSpec::Pairs(pairs) => LayerMap::explicit(pairs, s_layers, t_layers)
                .map_err(|e| TextError::Invalid(format!("{key}.map: {e}")))?,
        };
        let mut map = map;
        if entry.loss.reads_attention() {
            // The embeddings' output (layer 0) has no attention; the uniform map pairs it.
            map.pairs.retain(|&(s, t)| s > 0 && t > 0);
            if map.pairs.is_empty() {
                return Err(TextError::Invalid(format!(
                    "{key}.map: layer 0 (the embeddings) has no attention; expected pairs of \
                     encoder layers (1 or more)"
                )));
            }
        }
        let (ws, wt) = (student.hidden_size, teacher_config.hidden_size);
        let (hs, ht) = (
            student.num_attention_heads,
            teacher_config.num_attention_heads,
        );
        let relation_heads = entry.heads.unwrap_or(ht);
        match entry.loss {
            LayerLossKind::Cosine if ws != wt => {
                return Err(TextError::Invalid(format!(
                    "{key}: the cosine loss compares hidden states of equal width; the student's \
                     is {ws}, the teacher's {wt} (use loss \"hidden\", which learns a projection)"
                )));
            }
            LayerLossKind::Attention if hs != ht => {
                return Err(TextError::Invalid(format!(
                    "{key}: attention transfer needs the same number of heads; the student has \
                     {hs}, the teacher {ht}"
                )));
            }
            LayerLossKind::ValueRelation
                if !ws.is_multiple_of(relation_heads) || !wt.is_multiple_of(relation_heads) =>
            {
                return Err(TextError::Invalid(format!(
                    "{key}.heads: {relation_heads} relation heads must divide both widths, the \
                     student's {ws} and the teacher's {wt}"
                )));
            }
            _ => {}
        }
        let bert = teacher.clone().fork(device).no_grad();
        Ok(Self {
            bert,
            loss: ResolvedLoss {
                kind: entry.loss,
                weight: entry.weight,
                map,
                relation_heads,
                first_epochs: entry.first_epochs,
            },
            student_width: ws,
            teacher_width: wt,
        })
    }

    /// The learned projection the hidden-state loss needs (student width → teacher width),
    /// or `None` (other losses, or equal widths, where the states compare as they are).
    pub fn projection(&self, device: &Device) -> Option<Linear> {
        (self.loss.kind == LayerLossKind::Hidden && self.student_width != self.teacher_width)
            .then(|| projection(self.student_width, self.teacher_width, device))
    }

    /// The epochs of the first stage of a two-stage entry (`None`: the losses are summed in
    /// every epoch); the second stage starts a new optimiser and learning-rate schedule.
    pub fn first_epochs(&self) -> Option<usize> {
        self.loss.first_epochs
    }

    /// What the student learns from in epoch `epoch` (counted from 0).
    pub fn phase(&self, epoch: usize) -> LayerPhase {
        match self.loss.first_epochs {
            None => LayerPhase::Both,
            Some(first) if epoch < first => LayerPhase::LayersAlone,
            Some(_) => LayerPhase::KdAlone,
        }
    }

    /// The weighted inner-layer loss of one batch: the teacher runs on `ids` and `mask`
    /// without dropout or gradients; `student` is the student's detailed output on the same
    /// batch.
    pub fn loss(
        &self,
        student: &BertOutput,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
        projection: Option<&Linear>,
    ) -> Tensor<1> {
        let teacher = self
            .bert
            .forward_detailed(ids, mask.clone(), &BertDropout::default());
        let loss = &self.loss;
        let mut total: Option<Tensor<1>> = None;
        for &(s, t) in &loss.map.pairs {
            let term = match loss.kind {
                LayerLossKind::Hidden => hidden_mse(
                    student.hidden_states[s].clone(),
                    teacher.hidden_states[t].clone().detach(),
                    projection,
                    mask.clone(),
                ),
                LayerLossKind::Cosine => cosine_hidden(
                    student.hidden_states[s].clone(),
                    teacher.hidden_states[t].clone().detach(),
                    mask.clone(),
                ),
                LayerLossKind::Attention => attention_kl(
                    student.attentions[s - 1].clone(),
                    teacher.attentions[t - 1].clone().detach(),
                    mask.clone(),
                ),
                LayerLossKind::ValueRelation => value_relation_kl(
                    relation_split(student.values[s - 1].clone(), loss.relation_heads),
                    relation_split(teacher.values[t - 1].clone().detach(), loss.relation_heads),
                    mask.clone(),
                ),
            };
            total = Some(match total {
                Some(sum) => sum + term,
                None => term,
            });
        }
        // Averaged over the pairs, so that the weight does not grow with the depth.
        let pairs = loss.map.pairs.len() as f64;
        total.expect("at least one layer pair") * (loss.weight / pairs)
    }
}

/// Values `[batch, heads, len, width]` re-split into `relation` heads of the concatenated
/// width (MiniLMv2's relation heads); unchanged when `relation` equals `heads`.
pub fn relation_split(values: Tensor<4>, relation: usize) -> Tensor<4> {
    let [batch, heads, len, width] = values.dims();
    if heads == relation {
        return values;
    }
    let total = heads * width;
    values
        .swap_dims(1, 2)
        .reshape([batch, len, relation, total / relation])
        .swap_dims(1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Result<Vec<LayerLossConfig>, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            layers: Vec<LayerLossConfig>,
        }
        let wrapper: Wrapper = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_layer_losses(&wrapper.layers, &[StudentKind::Shallow, StudentKind::Cnn])?;
        Ok(wrapper.layers)
    }

    #[test]
    fn entries_parse_with_named_and_explicit_maps() {
        let layers = entry(
            "[[layers]]\nloss = \"hidden\"\nmap = \"uniform\"\n\
             [[layers]]\nloss = \"value-relation\"\nheads = 4\nmap = [[3, 6]]\n",
        )
        .unwrap();
        assert_eq!(layers[0].map, Some(LayerMapSpec::Named(NamedMap::Uniform)));
        assert_eq!(layers[1].map, Some(LayerMapSpec::Pairs(vec![(3, 6)])));
        assert_eq!(layers[1].weight, 1.0);
    }

    #[test]
    fn bad_entries_name_the_key() {
        let cases = [
            (
                "[[layers]]\nloss = \"hidden\"\nweight = 0.0\n",
                "layers[0] (hidden).weight",
            ),
            (
                "[[layers]]\nloss = \"attention\"\nheads = 2\n",
                "(attention).heads",
            ),
            (
                "[[layers]]\nloss = \"cosine\"\n[[layers]]\nloss = \"cosine\"\n",
                "layers[1]",
            ),
            ("[[layers]]\nloss = \"hidden\"\nmap = []\n", "(hidden).map"),
            (
                "[[layers]]\nloss = \"hidden\"\nstudents = [\"narrow\"]\n",
                "(hidden).students",
            ),
            (
                "[[layers]]\nloss = \"hidden\"\nstudents = [\"cnn\"]\n",
                "(hidden).students",
            ),
            (
                "[[layers]]\nloss = \"hidden\"\nfirst_epochs = 0\n",
                "layers[0] (hidden).first_epochs: expected at least 1",
            ),
            (
                "[[layers]]\nloss = \"hidden\"\nfirst_epochs = 1\n\
                 [[layers]]\nloss = \"hidden\"\nfirst_epochs = 2\n",
                "layers[1] (hidden): a second entry that trains student \"shallow-hidden-then-kd\"",
            ),
        ];
        for (text, expected) in cases {
            let error = entry(text).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        assert!(entry("[[layers]]\nloss = \"logits\"\n").is_err());
    }

    #[test]
    fn entries_of_one_loss_name_their_students_by_stage_and_weight() {
        let layers = entry(
            "[[layers]]\nloss = \"hidden\"\n\
             [[layers]]\nloss = \"hidden\"\nfirst_epochs = 1\n\
             [[layers]]\nloss = \"hidden\"\nweight = 0.1\n\
             [[layers]]\nloss = \"value-relation\"\nfirst_epochs = 1\nweight = 0.5\n",
        )
        .unwrap();
        let names: Vec<(String, &str)> = layers
            .iter()
            .map(|e| (e.student_name(StudentKind::Narrow), e.method()))
            .collect();
        let expected = [
            ("narrow-kd-hidden", "kd+hidden"),
            ("narrow-hidden-then-kd", "hidden,kd"),
            ("narrow-kd-hidden-w0.1", "kd+hidden"),
            ("narrow-value-relation-then-kd-w0.5", "value-relation,kd"),
        ];
        for ((name, method), (want, want_method)) in names.iter().zip(expected) {
            assert_eq!((name.as_str(), *method), (want, want_method));
        }
    }

    #[test]
    fn relation_split_regroups_the_concatenated_values() {
        let device = Device::flex();
        let values: Vec<f32> = (0..2 * 4 * 3 * 2).map(|v| v as f32).collect();
        let x =
            Tensor::<4>::from_data(burn::tensor::TensorData::new(values, [2, 4, 3, 2]), &device);
        let same = relation_split(x.clone(), 4);
        assert_eq!(same.to_data(), x.clone().to_data());
        // Two relation heads of width 4: head 0 holds original heads 0 and 1 side by side.
        let split = relation_split(x.clone(), 2);
        assert_eq!(split.dims(), [2, 2, 3, 4]);
        let original = crate::backend::to_host(x);
        let regrouped = crate::backend::to_host(split);
        // batch 0, relation head 0, token 1: original head 0 token 1, then head 1 token 1.
        let at = |h: usize, t: usize, w: usize| original[((h * 3) + t) * 2 + w];
        assert_eq!(
            &regrouped[4..8],
            &[at(0, 1, 0), at(0, 1, 1), at(1, 1, 0), at(1, 1, 1)]
        );
    }
}
