//! Held-out measures of language models (NLL, accuracy, ECE, agreement and KL against a
//! teacher) equal a float64 computation on the host from the same logits, padding included.

use apprentice::backend::{ComputeDevice, to_host};
use apprentice::lm::llama::LlamaConfig;
use apprentice::lm::metrics::{evaluate, evaluate_against_teacher};
use apprentice::lm::student::init_student;
use burn::tensor::{Int, Tensor, TensorData};

fn config(hidden: usize) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 24,
        hidden,
        layers: 1,
        heads: 2,
        kv_heads: 1,
        ffn: 2 * hidden,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_len: 32,
        tied: true,
    }
}

fn log_softmax64(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = row.iter().map(|&l| (l as f64 - max).exp()).sum();
    row.iter().map(|&l| l as f64 - max - total.ln()).collect()
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
}

#[test]
fn the_measures_equal_a_float64_computation() {
    let device = ComputeDevice::cpu().inference();
    let (tc, sc) = (config(16), config(8));
    // Sharpened teacher weights: a distribution far from the student's.
    let teacher = init_student(&tc, 1, &device);
    let student = init_student(&sc, 2, &device);
    let sequences: Vec<Vec<u32>> = vec![
        vec![1, 5, 9, 2, 7, 7, 3],
        vec![4, 4, 8],
        vec![11],
        vec![0, 23, 12, 6, 5],
    ];
    let (t, s) =
        evaluate_against_teacher((&teacher, &tc), &[(&student, &sc)], &sequences, 2, &device)
            .unwrap();
    let s = &s[0];
    let alone = evaluate(&student, &sc, &sequences, 3, &device).unwrap();

    let (mut n, mut nll_s, mut nll_t, mut acc, mut agree, mut kl) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut confidences = Vec::new();
    for seq in sequences.iter().filter(|s| s.len() >= 2) {
        let len = seq.len() - 1;
        let ids: Vec<i64> = seq[..len].iter().map(|&i| i as i64).collect();
        let forward = |model: &apprentice::lm::llama::Llama| {
            to_host(model.forward(Tensor::<2, Int>::from_data(
                TensorData::new(ids.clone(), [1, len]),
                &device,
            )))
        };
        let (lt, ls) = (forward(&teacher), forward(&student));
        for i in 0..len {
            let p = log_softmax64(&lt[i * 24..(i + 1) * 24]);
            let q = log_softmax64(&ls[i * 24..(i + 1) * 24]);
            let target = seq[i + 1] as usize;
            n += 1.0;
            nll_s -= q[target];
            nll_t -= p[target];
            let top = argmax(&q);
            acc += f64::from(u8::from(top == target));
            agree += f64::from(u8::from(top == argmax(&p)));
            kl += (0..24).map(|c| p[c].exp() * (p[c] - q[c])).sum::<f64>();
            confidences.push((q[top].exp(), top == target));
        }
    }
    let mut bins = vec![(0.0, 0.0, 0usize); 15];
    for &(c, ok) in &confidences {
        let b = ((c * 15.0) as usize).min(14);
        bins[b].0 += c;
        bins[b].1 += f64::from(u8::from(ok));
        bins[b].2 += 1;
    }
    let ece: f64 = bins.iter().map(|(c, o, _)| (c - o).abs() / n).sum();

    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-5, "{what}: {a} vs {b}");
    assert_eq!(s.tokens, 12);
    close(s.nll, nll_s / n, "student NLL");
    close(t.nll, nll_t / n, "teacher NLL");
    close(s.accuracy, acc / n, "accuracy");
    close(s.agreement.unwrap(), agree / n, "agreement");
    close(s.kl_from_teacher.unwrap(), kl / n, "KL");
    close(s.ece, ece, "ECE");
    close(s.perplexity(), (nll_s / n).exp(), "perplexity");
    assert!(t.agreement.is_none() && t.kl_from_teacher.is_none());
    // The batch size changes nothing; without a teacher there is no agreement.
    close(alone.nll, s.nll, "NLL at another batch size");
    assert!(alone.agreement.is_none());
    assert!(s.kl_from_teacher.unwrap() > 0.0);
}
