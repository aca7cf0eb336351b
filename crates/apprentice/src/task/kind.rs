//! Which task an experiment file describes, told from its top-level tables without parsing it
//! as any task's config (that is [`crate::experiment_file`]'s job).

/// Which task an experiment file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Image (or tabular) classification: `apprentice run`'s default.
    Image,
    /// Text classification with a pretrained encoder.
    Text,
    /// A generative language model distilled into small decoders.
    Language,
    /// Data arriving in stages, learned with and without forgetting.
    Continual,
}

impl TaskKind {
    /// Which task the TOML `text` describes, from its top-level tables. Text that is not TOML
    /// is an image experiment here; its parser then reports where the syntax is wrong.
    pub fn of_toml(text: &str) -> TaskKind {
        let Ok(table) = text.parse::<toml::Table>() else {
            return TaskKind::Image;
        };
        if table.get("text").is_some_and(toml::Value::is_table) {
            TaskKind::Text
        } else if table.get("lm").is_some_and(toml::Value::is_table) {
            TaskKind::Language
        } else if table.get("stages").is_some_and(toml::Value::is_array) {
            TaskKind::Continual
        } else {
            TaskKind::Image
        }
    }

    /// The task's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Image => "image classification",
            TaskKind::Text => "text classification",
            TaskKind::Language => "language model",
            TaskKind::Continual => "continual learning",
        }
    }
}
