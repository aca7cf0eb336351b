//! Transformer students of a BERT teacher: the shallow copy holds exactly the teacher's
//! embeddings and chosen layers (every other one by default) and runs on any batch; the narrow
//! student keeps the teacher's vocabulary at the requested width and depth.

use apprentice::backend::{self, ComputeDevice};
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::transformer_students::{
    every_other_layer, narrow_config, narrow_student, shallow_copy,
};
use burn::tensor::{Int, Tensor, TensorData};

fn teacher_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 60, "hidden_size": 24, "num_hidden_layers": 6,
        "num_attention_heads": 3, "intermediate_size": 48, "max_position_embeddings": 16
    }))
    .unwrap()
}

fn run(bert: &Bert) -> Vec<usize> {
    let device = ComputeDevice::cpu().inference();
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(vec![1i64, 5, 9, 2, 1, 7, 2, 0], [2, 4]),
        &device,
    );
    let mask = backend::matrix(vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], 2, 4, &device);
    bert.forward(ids, mask).dims().to_vec()
}

#[test]
fn the_shallow_copy_holds_the_teachers_layers() {
    let config = teacher_config();
    let device = ComputeDevice::cpu().inference();
    device.seed(11);
    let teacher = Bert::random(&config, &device);
    let layers = every_other_layer(config.num_hidden_layers);
    assert_eq!(layers, vec![0, 2, 4]);
    let (student, student_config) = shallow_copy(&teacher, &config, &layers, &device).unwrap();
    assert_eq!(student_config.num_hidden_layers, 3);
    assert_eq!(student.layers.len(), 3);
    for (k, &t) in layers.iter().enumerate() {
        for (ours, theirs) in [
            (&student.layers[k].query, &teacher.layers[t].query),
            (&student.layers[k].output, &teacher.layers[t].output),
        ] {
            assert_eq!(
                backend::to_host(ours.weight.val()),
                backend::to_host(theirs.weight.val())
            );
        }
        assert_eq!(
            backend::to_host(student.layers[k].output_norm.gamma.val()),
            backend::to_host(teacher.layers[t].output_norm.gamma.val())
        );
    }
    // Different teacher layers really differ, so the equality above is not trivial.
    assert_ne!(
        backend::to_host(teacher.layers[0].query.weight.val()),
        backend::to_host(teacher.layers[1].query.weight.val())
    );
    assert_eq!(
        backend::to_host(student.embeddings.word.weight.val()),
        backend::to_host(teacher.embeddings.word.weight.val())
    );
    assert_eq!(run(&student), vec![2, 4, 24]);
    assert!(shallow_copy(&teacher, &config, &[6], &device).is_err());
    assert!(shallow_copy(&teacher, &config, &[], &device).is_err());
}

#[test]
fn the_narrow_student_keeps_the_vocabulary() {
    let teacher = teacher_config();
    let config = narrow_config(&teacher, 2, 12, 2).unwrap();
    assert_eq!(config.vocab_size, teacher.vocab_size);
    assert_eq!(config.intermediate_size, 48);
    let device = ComputeDevice::cpu().inference();
    let student = narrow_student(&config, &device);
    assert_eq!(student.layers.len(), 2);
    assert_eq!(student.embeddings.word.weight.dims(), [60, 12]);
    assert_eq!(run(&student), vec![2, 4, 12]);
    assert!(
        narrow_config(&teacher, 2, 12, 5).is_err(),
        "5 heads do not divide 12"
    );
}
