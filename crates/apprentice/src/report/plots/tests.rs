//! Every kind of chart drawn from degenerate descriptions. Kept beside the charts rather than
//! in any one of them, because it exercises them all through [`render`].

use super::*;

#[test]
fn every_chart_kind_draws_even_when_degenerate() {
    let dot = DotChart {
        title: "t".into(),
        axis: "a".into(),
        rows: vec![
            DotRow::Heading("h".into()),
            DotRow::Dot {
                name: "m".into(),
                color: (1, 2, 3),
                mean: f64::NAN,
                std: None,
                seeds: vec![],
                value: "—".into(),
            },
        ],
        reference: None,
    };
    render("knowledge", "t", &dot).unwrap();
    let empty_rows = DotChart {
        rows: vec![],
        ..dot
    };
    render("knowledge", "t", &empty_rows).unwrap();
    let panels = PanelChart {
        x_axis: "epoch".to_string(),
        title: "t".into(),
        y_axis: "y".into(),
        percent: true,
        legend_low: true,
        log_y: false,
        panels: vec![LinePanel {
            title: "p".into(),
            lines: vec![Line {
                label: "l".into(),
                color: (1, 2, 3),
                mean: vec![(1.0, 50.0)],
                band: vec![(1.0, 50.0, 50.0)],
                marker: Some((1.0, 50.0, "epoch 1".into())),
            }],
            levels: vec![Level {
                value: f64::NAN,
                label: "x".into(),
                dense: true,
            }],
        }],
    };
    render("learning", "t", &panels).unwrap();
    // A logarithmic axis draws the logarithms; a value it cannot take is skipped, not drawn.
    let mut logged = panels.clone();
    logged.log_y = true;
    logged.panels[0].lines[0].mean = vec![(0.0, 100.0), (1.0, 10.0), (2.0, 0.0)];
    logged.panels[0].levels[0].value = 1000.0;
    let values = logged.panels[0].log10();
    let means: Vec<f64> = values.lines[0].mean.iter().map(|p| p.1).collect();
    assert_eq!(&means[..2], &[2.0, 1.0]);
    assert!(means[2].is_nan());
    assert_eq!(values.levels[0].value, 3.0);
    render("perplexity", "t", &logged).unwrap();
    let scatter = ScatterChart {
        title: "t".into(),
        y_axis: "y".into(),
        panels: vec![ScatterPanel {
            title: "p".into(),
            x_axis: "x".into(),
            points: vec![Point {
                label: "only".into(),
                color: (1, 2, 3),
                x: 10.0,
                y: 90.0,
                y_err: None,
                emphasise: true,
            }],
        }],
    };
    render("cost", "t", &scatter).unwrap();
    let heat = HeatmapChart {
        title: "t".into(),
        maps: vec![
            Heatmap {
                title: "a".into(),
                matrix: vec![vec![3, 1], vec![0, 0]],
            },
            Heatmap {
                title: "ragged".into(),
                matrix: vec![vec![1], vec![]],
            },
        ],
    };
    let chart = render("confusion", "t", &heat).unwrap();
    assert!(chart.svg.starts_with("<svg"));
    assert_eq!(&chart.png[1..4], b"PNG");
}
