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
