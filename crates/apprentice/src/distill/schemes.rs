//! Distillation schemes: who teaches whom, rather than what loss compares them. Each scheme is
//! carried out by the experiment runner with Hinton's KD loss (or, for deep mutual learning,
//! the cohort loss of the training loop); these are their descriptions for listings.

use super::methods::{HyperParameter, MethodInfo};

/// Born-again networks.
pub const BORN_AGAIN_INFO: MethodInfo = MethodInfo {
    name: "born-again",
    title: "Born-again networks (self-distillation over generations)",
    paper: "Furlanello, Lipton, Tschannen, Itti, Anandkumar: Born-Again Neural Networks, ICML 2018",
    inputs: "no separate teacher: generation k is taught by generation k − 1 of the student's own architecture, generation 0 being the scratch student",
    conventions: "each generation trains with KD (distill.temperature, distill.alpha) from the previous one's logits; the ensemble row averages the generations' probabilities",
    hyper_parameters: &[HyperParameter {
        key: "born_again.generations",
        default: 3.0,
        meaning: "generations distilled after the scratch student",
    }],
};

/// Deep mutual learning.
pub const DML_INFO: MethodInfo = MethodInfo {
    name: "dml",
    title: "Deep mutual learning",
    paper: "Zhang, Xiang, Hospedales, Lu: Deep Mutual Learning, CVPR 2018",
    inputs: "a cohort of students trained together from scratch, no pretrained teacher",
    conventions: "each member minimises CE + mean over peers of T²·KL(p_peer ‖ p_self), peers detached, all members updated at every step (the paper alternates); the first member is reported",
    hyper_parameters: &[
        HyperParameter {
            key: "dml.students",
            default: 2.0,
            meaning: "students in the cohort",
        },
        HyperParameter {
            key: "dml.temperature",
            default: 1.0,
            meaning: "temperature of the mutual KL terms (the paper uses plain softmax)",
        },
    ],
};

/// Multi-teacher distillation.
pub const MULTI_TEACHER_INFO: MethodInfo = MethodInfo {
    name: "multi-teacher",
    title: "Multi-teacher distillation (averaged soft targets)",
    paper: "Hinton, Vinyals, Dean 2015 (ensemble teachers); You, Xu, Xu, Tao: Learning from Multiple Teacher Networks, KDD 2017",
    inputs: "the run's teacher plus extra teachers of its architecture trained from other seeds",
    conventions: "KD against the weighted mean of the teachers' probabilities at temperature T (as logits T·log Σ w_k softmax(t_k/T))",
    hyper_parameters: &[HyperParameter {
        key: "multi_teacher.teachers",
        default: 3.0,
        meaning: "teachers, the run's own included; multi_teacher.weights optional",
    }],
};

/// Teacher-assistant distillation.
pub const TA_INFO: MethodInfo = MethodInfo {
    name: "ta",
    title: "Teacher-assistant knowledge distillation",
    paper: "Mirzadeh, Farajtabar, Li, Levine, Matsukawa, Ghasemzadeh: Improved Knowledge Distillation via Teacher Assistant, AAAI 2020",
    inputs: "an assistant architecture between teacher and student ([distill.assistant] model)",
    conventions: "the assistant learns from the teacher by KD on the student's schedule (unless distill.assistant.train says otherwise), then the student learns from the assistant by KD",
    hyper_parameters: &[],
};

/// Online distillation from the teacher's checkpoints along its training.
pub const ONLINE_INFO: MethodInfo = MethodInfo {
    name: "online",
    title: "Online distillation (teacher checkpoints of rising difficulty)",
    paper: "Harutyunyan, Rawat, Menon, Kim, Kumar: Supervision Complexity and its Role in Knowledge Distillation, ICLR 2023",
    inputs: "the teacher's checkpoints along its training (kept by the run, or teacher.checkpoints for a loaded teacher)",
    conventions: "student epoch e learns from the teacher checkpoint at the same fraction of training, rounded up to a kept one; KD loss at online.temperature with label weight online.alpha",
    hyper_parameters: &[
        HyperParameter {
            key: "online.temperature",
            default: 1.0,
            meaning: "temperature of the teacher's probabilities",
        },
        HyperParameter {
            key: "online.alpha",
            default: 0.0,
            meaning: "weight of the hard-label cross-entropy",
        },
        HyperParameter {
            key: "online.every_epochs",
            default: 1.0,
            meaning: "the teacher keeps a checkpoint every this many epochs (and its last)",
        },
    ],
};

/// Every scheme, in listing order.
pub const SCHEMES: [&MethodInfo; 5] = [
    &BORN_AGAIN_INFO,
    &DML_INFO,
    &MULTI_TEACHER_INFO,
    &TA_INFO,
    &ONLINE_INFO,
];
