//! The numeric CSV reader on arbitrary bytes, with each label-column and header setting.
#![no_main]

use apprentice::data::csv::{CsvOptions, LabelColumn, parse_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (choice, bytes) = input;
    let options = CsvOptions {
        label_column: match choice % 4 {
            0 => LabelColumn::Last,
            1 => LabelColumn::First,
            2 => LabelColumn::Index(1),
            _ => LabelColumn::Name("label".into()),
        },
        has_header: choice & 0x10 != 0 || choice % 4 == 3,
        ..CsvOptions::default()
    };
    if let Ok(data) = parse_csv(bytes, "fuzz.csv", &options) {
        assert_eq!(data.features.len(), data.len() * data.shape.len());
        assert!(data.labels.iter().all(|&l| (l as usize) < data.num_classes));
    }
});
