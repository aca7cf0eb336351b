//! Hugging Face `BertForSequenceClassification` folders: saving a [`BertClassifier`] so that
//! `transformers` loads it, and loading such folders (also ones fine-tuned elsewhere).
//!
//! A folder holds `config.json` (the encoder's fields, `architectures`, `id2label`,
//! `label2id`, `num_labels`), `model.safetensors` (`bert.*`, `bert.pooler.dense.*`,
//! `classifier.weight` `[labels, hidden]`, `classifier.bias`) and, when known, the tokenizer
//! files of the model it was fine-tuned from. Errors name the file and the field or tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use super::bert::{Bert, BertConfig};
use super::classifier::{BertClassifier, ClassifierPooling, bert_linear};
use super::error::TextError;
use super::pretrained::{
    CONFIG_FILE, WEIGHTS_FILE, check_weights, load_weights, read_config, read_header,
};

/// The architecture name `transformers` gives a BERT sequence classifier.
pub const CLASSIFIER_ARCHITECTURE: &str = "BertForSequenceClassification";
/// The `config.json` key that marks apprentice's mean-pooling head (ignored by `transformers`).
pub const POOLING_KEY: &str = "apprentice_pooling";
/// Files copied from the source model folder when saving, when present.
const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

/// A classifier read from a folder.
#[derive(Debug)]
pub struct LoadedClassifier {
    /// The encoder's shape.
    pub config: BertConfig,
    /// Class names in class order (`id2label`).
    pub labels: Vec<String>,
    /// Dropout before the classification layer (`classifier_dropout`, else
    /// `hidden_dropout_prob`).
    pub head_dropout: f64,
    /// The model.
    pub model: BertClassifier,
}

fn invalid(path: &Path, message: impl Into<String>) -> TextError {
    TextError::model(path, message)
}

/// Class names from `id2label` (keys `"0"`, `"1"`, …), checked against `num_labels`.
fn read_labels(path: &Path, value: &serde_json::Value) -> Result<Vec<String>, TextError> {
    let id2label = value.get("id2label").and_then(|v| v.as_object());
    let num_labels = match value.get("num_labels") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            invalid(
                path,
                format!("num_labels: expected a whole number, found {v}"),
            )
        })? as usize),
    };
    let Some(id2label) = id2label else {
        return match num_labels {
            Some(n) if n > 0 => Ok((0..n).map(|i| format!("LABEL_{i}")).collect()),
            _ => Err(invalid(
                path,
                "id2label: missing (a sequence classifier needs id2label or num_labels)",
            )),
        };
    };
    let mut labels = vec![None; id2label.len()];
    for (key, name) in id2label {
        let index: usize = key
            .parse()
            .ok()
            .filter(|&i| i < labels.len())
            .ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "id2label: key {key:?} is not a class index below {}",
                        labels.len()
                    ),
                )
            })?;
        labels[index] = Some(name.as_str().unwrap_or_default().to_string());
    }
    let labels: Vec<String> = labels.into_iter().map(Option::unwrap_or_default).collect();
    if labels.is_empty() {
        return Err(invalid(path, "id2label: expected at least one class"));
    }
    if let Some(n) = num_labels
        && n != labels.len()
    {
        return Err(invalid(
            path,
            format!(
                "num_labels: {n}, but id2label names {} classes",
                labels.len()
            ),
        ));
    }
    Ok(labels)
}

/// A float32 tensor of the file by name, checked against `shape`.
fn read_tensor(
    file: &SafeTensors<'_>,
    path: &Path,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, TextError> {
    let view = file.tensor(name).map_err(|_| {
        invalid(
            path,
            format!("missing tensor {name:?} (expected shape {shape:?} from {CONFIG_FILE})"),
        )
    })?;
    if view.shape() != shape {
        return Err(invalid(
            path,
            format!(
                "tensor {name:?} has shape {:?}, expected {shape:?} from {CONFIG_FILE}",
                view.shape()
            ),
        ));
    }
    if view.dtype() != Dtype::F32 {
        return Err(invalid(
            path,
            format!("tensor {name:?} is {:?}, expected F32", view.dtype()),
        ));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A dense layer from PyTorch's `[out, in]` weight and its bias.
fn linear_from(weight: Vec<f32>, bias: Vec<f32>, outputs: usize, device: &Device) -> Linear {
    let inputs = weight.len() / outputs.max(1);
    // Transposed on the host, so that the weight is contiguous `[in, out]` as a trained
    // layer's is: the same kernels run, and a model read back gives bit-identical outputs.
    let mut transposed = vec![0.0; weight.len()];
    for (o, row) in weight.chunks_exact(inputs.max(1)).enumerate() {
        for (i, &value) in row.iter().enumerate() {
            transposed[i * outputs + o] = value;
        }
    }
    let weight: Tensor<2> =
        Tensor::from_data(TensorData::new(transposed, [inputs, outputs]), device);
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [outputs]),
            device,
        ))),
    }
}

/// Reads a `BertForSequenceClassification` folder.
pub fn load_classifier(dir: &Path, device: &Device) -> Result<LoadedClassifier, TextError> {
    let config_path = dir.join(CONFIG_FILE);
    let config = read_config(&config_path)?;
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| invalid(&config_path, format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(&config_path, format!("not JSON: {e}")))?;
    let architectures: Vec<&str> = value
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if !architectures.contains(&CLASSIFIER_ARCHITECTURE) {
        return Err(invalid(
            &config_path,
            format!(
                "architectures: unknown architecture {architectures:?}; expected \
                 [\"{CLASSIFIER_ARCHITECTURE}\"]"
            ),
        ));
    }
    let labels = read_labels(&config_path, &value)?;
    let pooling = match value.get(POOLING_KEY).and_then(|v| v.as_str()) {
        None | Some("cls") => ClassifierPooling::Cls,
        Some("mean") => ClassifierPooling::Mean,
        Some(other) => {
            return Err(invalid(
                &config_path,
                format!("{POOLING_KEY}: expected \"cls\" or \"mean\", found {other:?}"),
            ));
        }
    };
    let head_dropout = value
        .get("classifier_dropout")
        .and_then(|v| v.as_f64())
        .unwrap_or(config.hidden_dropout_prob);
    let weights_path = dir.join(WEIGHTS_FILE);
    let header = read_header(&weights_path)?;
    if !header.contains_key("bert.embeddings.word_embeddings.weight") {
        return Err(invalid(
            &weights_path,
            "missing tensor \"bert.embeddings.word_embeddings.weight\" (a sequence classifier \
             keeps its encoder under bert.)",
        ));
    }
    let mappings = check_weights(&weights_path, &config)?;
    let bert = load_weights(Bert::zeros(&config, device), &weights_path, &mappings)?;
    let bytes = std::fs::read(&weights_path)
        .map_err(|e| invalid(&weights_path, format!("cannot read: {e}")))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| invalid(&weights_path, format!("not a safetensors file: {e}")))?;
    let h = config.hidden_size;
    let n = labels.len();
    let classifier = linear_from(
        read_tensor(&file, &weights_path, "classifier.weight", &[n, h])?,
        read_tensor(&file, &weights_path, "classifier.bias", &[n])?,
        n,
        device,
    );
    let pooler = if header.contains_key("bert.pooler.dense.weight") {
        linear_from(
            read_tensor(&file, &weights_path, "bert.pooler.dense.weight", &[h, h])?,
            read_tensor(&file, &weights_path, "bert.pooler.dense.bias", &[h])?,
            h,
            device,
        )
    } else if pooling == ClassifierPooling::Cls {
        return Err(invalid(
            &weights_path,
            format!("missing tensor \"bert.pooler.dense.weight\" (expected shape [{h}, {h}])"),
        ));
    } else {
        bert_linear(h, h, config.initializer_range, device)
    };
    Ok(LoadedClassifier {
        config,
        labels,
        head_dropout,
        model: BertClassifier {
            bert,
            pooler,
            classifier,
            mean_pooling: pooling == ClassifierPooling::Mean,
        },
    })
}

/// The pooler of a plain encoder folder (`pooler.dense.*` or `bert.pooler.dense.*`), if it has
/// one: fine-tuning with the `[CLS]` head starts from it, as `transformers` does.
pub fn read_pooler(dir: &Path, config: &BertConfig, device: &Device) -> Option<Linear> {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).ok()?;
    let file = SafeTensors::deserialize(&bytes).ok()?;
    let h = config.hidden_size;
    ["pooler.dense", "bert.pooler.dense"]
        .iter()
        .find_map(|prefix| {
            let weight = read_tensor(&file, &path, &format!("{prefix}.weight"), &[h, h]).ok()?;
            let bias = read_tensor(&file, &path, &format!("{prefix}.bias"), &[h]).ok()?;
            Some(linear_from(weight, bias, h, device))
        })
}

/// Every tensor of `model` under its `transformers` name, in PyTorch's layout (`[out, in]` for
/// dense weights).
fn named_tensors(model: &BertClassifier) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut tensors = Vec::new();
    let mut vector = |name: String, t: Tensor<1>| {
        let dims = t.dims().to_vec();
        tensors.push((name, dims, crate::backend::to_host(t)));
    };
    let bert = &model.bert;
    let e = &bert.embeddings;
    let mut matrices: Vec<(String, Tensor<2>)> = vec![
        (
            "bert.embeddings.word_embeddings.weight".into(),
            e.word.weight.val(),
        ),
        (
            "bert.embeddings.position_embeddings.weight".into(),
            e.position.weight.val(),
        ),
        (
            "bert.embeddings.token_type_embeddings.weight".into(),
            e.token_type.weight.val(),
        ),
    ];
    let mut norm = |name: &str, n: &burn::nn::LayerNorm| {
        vector(format!("{name}.weight"), n.gamma.val());
        if let Some(beta) = &n.beta {
            vector(format!("{name}.bias"), beta.val());
        }
    };
    norm("bert.embeddings.LayerNorm", &e.norm);
    let mut dense: Vec<(String, &Linear)> = Vec::new();
    for (index, layer) in bert.layers.iter().enumerate() {
        let prefix = format!("bert.encoder.layer.{index}");
        dense.push((format!("{prefix}.attention.self.query"), &layer.query));
        dense.push((format!("{prefix}.attention.self.key"), &layer.key));
        dense.push((format!("{prefix}.attention.self.value"), &layer.value));
        dense.push((
            format!("{prefix}.attention.output.dense"),
            &layer.attention_output,
        ));
        dense.push((format!("{prefix}.intermediate.dense"), &layer.intermediate));
        dense.push((format!("{prefix}.output.dense"), &layer.output));
        norm(
            &format!("{prefix}.attention.output.LayerNorm"),
            &layer.attention_norm,
        );
        norm(&format!("{prefix}.output.LayerNorm"), &layer.output_norm);
    }
    dense.push(("bert.pooler.dense".into(), &model.pooler));
    dense.push(("classifier".into(), &model.classifier));
    for (name, linear) in dense {
        matrices.push((format!("{name}.weight"), linear.weight.val().transpose()));
        if let Some(bias) = &linear.bias {
            vector(format!("{name}.bias"), bias.val());
        }
    }
    for (name, matrix) in matrices {
        let dims = matrix.dims().to_vec();
        tensors.push((name, dims, crate::backend::to_host(matrix)));
    }
    tensors
}

/// Writes `model` as a `BertForSequenceClassification` folder in `dir` (created if needed):
/// `config.json` (the encoder's `config` plus the classifier's fields, over `base_config` when
/// given, e.g. the source folder's own `config.json`), `model.safetensors`, and the tokenizer
/// files of `tokenizer_from` when given.
pub fn save_classifier(
    model: &BertClassifier,
    config: &BertConfig,
    labels: &[String],
    tokenizer_from: Option<&Path>,
    dir: &Path,
) -> Result<(), TextError> {
    let io = |path: PathBuf| move |source: std::io::Error| TextError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    if labels.len() != model.labels() {
        return Err(TextError::Invalid(format!(
            "save_classifier: {} label names for a classifier of {} classes",
            labels.len(),
            model.labels()
        )));
    }
    let mut value = tokenizer_from
        .and_then(|source| std::fs::read_to_string(source.join(CONFIG_FILE)).ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .filter(|v| v.is_object())
        .unwrap_or_else(|| serde_json::json!({}));
    let ours = serde_json::to_value(config).map_err(|e| TextError::Invalid(e.to_string()))?;
    let object = value.as_object_mut().expect("an object");
    for (key, field) in ours.as_object().expect("a struct serialises to an object") {
        object.insert(key.clone(), field.clone());
    }
    object.insert("model_type".into(), "bert".into());
    object.insert(
        "architectures".into(),
        serde_json::json!([CLASSIFIER_ARCHITECTURE]),
    );
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l.clone().into()))
        .collect();
    let label2id: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i.into()))
        .collect();
    object.insert("id2label".into(), id2label.into());
    object.insert("label2id".into(), label2id.into());
    object.insert("num_labels".into(), labels.len().into());
    object.insert("problem_type".into(), "single_label_classification".into());
    object.remove("_name_or_path");
    match model.pooling() {
        ClassifierPooling::Cls => object.remove(POOLING_KEY),
        ClassifierPooling::Mean => object.insert(POOLING_KEY.into(), "mean".into()),
    };
    let config_path = dir.join(CONFIG_FILE);
    let text =
        serde_json::to_string_pretty(&value).map_err(|e| TextError::Invalid(e.to_string()))?;
    std::fs::write(&config_path, text + "\n").map_err(io(config_path.clone()))?;

    let tensors = named_tensors(model);
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), data) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, shape.clone(), data)
            .map_err(|e| TextError::Invalid(format!("tensor {name:?}: {e}")))?;
        views.push((name.clone(), view));
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize_to_file(views, Some(metadata), &weights_path)
        .map_err(|e| invalid(&weights_path, format!("cannot write: {e}")))?;
    if let Some(source) = tokenizer_from {
        for name in TOKENIZER_FILES {
            let from = source.join(name);
            if from.is_file() {
                std::fs::copy(&from, dir.join(name)).map_err(io(from.clone()))?;
            }
        }
    }
    Ok(())
}
