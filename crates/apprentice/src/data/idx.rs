//! The IDX format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a 4-byte magic (`0x00 0x00`, an element type, a dimension count), one
//! big-endian `u32` per dimension, then the values in row-major order. Only unsigned bytes
//! (type `0x08`) are accepted, which is what every MNIST-style data set uses.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::read::{open, read_up_to};
use super::{DataError, Dataset, SampleShape};

/// The only element type accepted: unsigned bytes.
const TYPE_U8: u8 = 0x08;

/// More dimensions than any real IDX file has; bounds the header a reader must trust.
const MAX_RANK: usize = 8;

/// Largest value count [`read_idx`] accepts (1 GiB of bytes, 4 GiB once converted to `f32`),
/// so that a corrupt or hostile header cannot make the reader decompress without end.
pub const MAX_IDX_VALUES: usize = 1 << 30;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Size of each dimension, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values in row-major order; its length is the product of `dims`.
    pub data: Vec<u8>,
}

/// What the header of an IDX file declares.
struct Header {
    dims: Vec<usize>,
    /// Bytes taken by the magic and the dimensions.
    len: usize,
    /// Product of the dimensions.
    count: usize,
}

/// Reads the 4-byte magic; returns the number of dimensions it declares.
fn parse_magic(bytes: &[u8], source_name: &str) -> Result<usize, DataError> {
    let expected = "expected an IDX file (magic 0x00 0x00 <type> <rank>)";
    let Some(magic) = bytes.get(..4) else {
        return Err(DataError::format(
            source_name,
            format!("{expected}, found only {} bytes", bytes.len()),
        ));
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::format(
            source_name,
            format!(
                "{expected}, found 0x{:02x} 0x{:02x} 0x{:02x} 0x{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if magic[2] != TYPE_U8 {
        let name = match magic[2] {
            0x09 => "signed byte",
            0x0b => "16-bit integer",
            0x0c => "32-bit integer",
            0x0d => "32-bit float",
            0x0e => "64-bit float",
            _ => "unknown",
        };
        return Err(DataError::format(
            source_name,
            format!(
                "expected IDX element type 0x08 (unsigned byte), found type 0x{:02x} ({name})",
                magic[2]
            ),
        ));
    }
    let rank = usize::from(magic[3]);
    if rank == 0 || rank > MAX_RANK {
        return Err(DataError::format(
            source_name,
            format!("expected 1 to {MAX_RANK} IDX dimensions, found {rank}"),
        ));
    }
    Ok(rank)
}

/// Parses the magic and dimensions at the start of `bytes` (which may hold only the header).
fn parse_header(bytes: &[u8], source_name: &str) -> Result<Header, DataError> {
    let rank = parse_magic(bytes, source_name)?;
    let len = 4 + 4 * rank;
    let Some(raw_dims) = bytes.get(4..len) else {
        return Err(DataError::format(
            source_name,
            format!(
                "declares {rank} dimensions but ends inside the header ({} of {len} bytes)",
                bytes.len()
            ),
        ));
    };
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    // Checked so that a header like 2^32 × 2^32 × 2^32 is an error, not a wrapped small size.
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            DataError::format(
                source_name,
                format!("declares dimensions {dims:?} whose product does not fit in memory"),
            )
        })?;
    Ok(Header { dims, len, count })
}

/// Checks that `available` data bytes match the header's declared count.
fn check_count(header: &Header, available: usize, source_name: &str) -> Result<(), DataError> {
    if available < header.count {
        return Err(DataError::format(
            source_name,
            format!(
                "declares {} values ({:?}) but holds only {available}",
                header.count, header.dims
            ),
        ));
    }
    if available > header.count {
        return Err(DataError::format(
            source_name,
            format!(
                "declares {} values ({:?}) but has trailing bytes after them",
                header.count, header.dims
            ),
        ));
    }
    Ok(())
}

/// Parses a whole (already decompressed) IDX file held in memory.
pub fn parse_idx(bytes: &[u8], source_name: &str) -> Result<IdxArray, DataError> {
    let header = parse_header(bytes, source_name)?;
    let data = &bytes[header.len..];
    check_count(&header, data.len(), source_name)?;
    Ok(IdxArray {
        dims: header.dims,
        data: data.to_vec(),
    })
}

/// Reads an IDX file, raw or gzip-compressed (recognised by its content, not its name).
///
/// The header is read first and the rest is read through a limit of the declared size plus
/// one byte, after refusing sizes above [`MAX_IDX_VALUES`]; memory therefore never exceeds
/// what the file really holds, whatever its header claims.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let source_name = path.display().to_string();
    let io_error = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = open(path)?;
    let mut bytes = vec![0u8; 4];
    let got = read_up_to(&mut reader, &mut bytes).map_err(io_error)?;
    bytes.truncate(got);
    let rank = parse_magic(&bytes, &source_name)?;
    bytes.resize(4 + 4 * rank, 0);
    let got = read_up_to(&mut reader, &mut bytes[4..]).map_err(io_error)?;
    bytes.truncate(4 + got);
    let header = parse_header(&bytes, &source_name)?;
    if header.count > MAX_IDX_VALUES {
        return Err(DataError::format(
            &source_name,
            format!(
                "declares {} values ({:?}), more than the {MAX_IDX_VALUES} this reader accepts",
                header.count, header.dims
            ),
        ));
    }
    // The extra byte lets trailing data be detected without reading it all.
    let limit = header.count as u64 + 1;
    reader
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    check_count(&header, bytes.len() - header.len, &source_name)?;
    // Dropping the header in place avoids a second copy of a possibly large array.
    bytes.drain(..header.len);
    Ok(IdxArray {
        dims: header.dims,
        data: bytes,
    })
}

/// Loads an image file (dimensions `n × rows × columns`) and a label file (dimension `n`) as
/// one data set: pixels become `value / 255`, shape `1 × rows × columns`, and the class count
/// is the largest label plus one.
pub fn load_idx_pair(images: &Path, labels: &Path, name: &str) -> Result<Dataset, DataError> {
    let (pixels, shape) = read_images(images)?;
    let label_values = read_labels(labels)?;
    let image_count = pixels.len() / shape.len();
    if label_values.len() != image_count {
        return Err(DataError::Invalid(format!(
            "{} holds {image_count} images but {} holds {} labels; expected one label per image",
            images.display(),
            labels.display(),
            label_values.len()
        )));
    }
    let num_classes = label_values.iter().max().map_or(1, |&m| m as usize + 1);
    // Converted only once both files are known to fit together.
    let features = pixels.iter().map(|&v| f32::from(v) / 255.0).collect();
    Ok(Dataset {
        name: name.to_owned(),
        features,
        labels: label_values,
        shape,
        num_classes,
    })
}

/// The raw pixels of an image file and the shape of one image.
fn read_images(path: &Path) -> Result<(Vec<u8>, SampleShape), DataError> {
    let array = read_idx(path)?;
    let &[_, rows, cols] = array.dims.as_slice() else {
        return Err(DataError::format(
            &path.display().to_string(),
            format!(
                "expected an image file with 3 dimensions (images × rows × columns), found {:?}",
                array.dims
            ),
        ));
    };
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            &path.display().to_string(),
            format!("expected images of at least 1 × 1 pixels, found {rows} × {cols}"),
        ));
    }
    Ok((array.data, SampleShape::image(1, rows, cols)))
}

fn read_labels(path: &Path) -> Result<Vec<u32>, DataError> {
    let array = read_idx(path)?;
    if array.dims.len() != 1 {
        return Err(DataError::format(
            &path.display().to_string(),
            format!(
                "expected a label file with 1 dimension, found {:?}",
                array.dims
            ),
        ));
    }
    Ok(array.data.iter().map(|&v| u32::from(v)).collect())
}

/// The four file names of an MNIST-style folder, without the optional `.gz`.
const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `stem.gz` or `stem` in `dir`, preferring the compressed one.
fn find_mnist_file(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(stem);
    if raw.is_file() {
        return Ok(raw);
    }
    let expected: Vec<String> = MNIST_FILES.iter().map(|f| format!("{f}[.gz]")).collect();
    Err(DataError::format(
        &dir.display().to_string(),
        format!(
            "cannot find {stem} or {stem}.gz; expected an MNIST-style folder holding {}",
            expected.join(", ")
        ),
    ))
}

/// Loads an MNIST-style folder (MNIST, Fashion-MNIST, KMNIST ...) as `(train, test)`, named
/// `<folder>/train` and `<folder>/test`. Both get the same class count, the largest label of
/// either plus one, so that a class absent from one split still lines up.
pub fn load_mnist_dir(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    if !dir.is_dir() {
        return Err(DataError::format(
            &dir.display().to_string(),
            "expected a folder of MNIST-style IDX files, found no such folder",
        ));
    }
    let [train_images, train_labels, test_images, test_labels] =
        MNIST_FILES.map(|stem| find_mnist_file(dir, stem));
    let folder = folder_name(dir);
    let mut train = load_idx_pair(&train_images?, &train_labels?, &format!("{folder}/train"))?;
    let mut test = load_idx_pair(&test_images?, &test_labels?, &format!("{folder}/test"))?;
    if train.shape != test.shape {
        return Err(DataError::format(
            &dir.display().to_string(),
            format!(
                "expected training and test images of the same size, found {} × {} and {} × {}",
                train.shape.height, train.shape.width, test.shape.height, test.shape.width
            ),
        ));
    }
    let num_classes = train.num_classes.max(test.num_classes);
    train.num_classes = num_classes;
    test.num_classes = num_classes;
    Ok((train, test))
}

/// The last component of `dir`, resolving `.` and `..` so that names stay meaningful.
fn folder_name(dir: &Path) -> String {
    let last = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    last(dir)
        .or_else(|| dir.canonicalize().ok().and_then(|p| last(&p)))
        .unwrap_or_else(|| dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = idx_bytes(&[2, 3, 4], &data);
        let parsed = parse_idx(&bytes, "mem").unwrap();
        assert_eq!(parsed.dims, vec![2, 3, 4]);
        assert_eq!(parsed.data, data);

        let dir = tempfile::tempdir().unwrap();
        let raw = write(dir.path(), "a.idx", &bytes);
        // Named without .gz on purpose: detection is by content.
        let gz = write(dir.path(), "b.idx", &gzip(&bytes));
        assert_eq!(read_idx(&raw).unwrap(), parsed);
        assert_eq!(read_idx(&gz).unwrap(), parsed);
    }

    #[test]
    fn wrong_magic_is_named() {
        let err = parse_idx(b"PK\x03\x04rest", "x.zip")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.zip: expected an IDX file (magic 0x00 0x00"),
            "{err}"
        );
        assert!(err.contains("found 0x50 0x4b"), "{err}");
        assert!(parse_idx(b"\0\0", "short").is_err());
    }

    #[test]
    fn wrong_type_is_named() {
        let mut bytes = idx_bytes(&[1], &[0, 0, 0, 0]);
        bytes[2] = 0x0d;
        let err = parse_idx(&bytes, "f.idx").unwrap_err().to_string();
        assert!(err.contains("found type 0x0d (32-bit float)"), "{err}");
    }

    #[test]
    fn truncated_and_trailing_data_are_errors() {
        let err = parse_idx(&idx_bytes(&[10], &[1, 2, 3]), "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("declares 10 values ([10]) but holds only 3"),
            "{err}"
        );
        let err = parse_idx(&idx_bytes(&[2], &[1, 2, 3]), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trailing bytes"), "{err}");
        // Ends inside the dimension list.
        let err = parse_idx(&idx_bytes(&[5, 5], &[])[..9], "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ends inside the header"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let gz = write(dir.path(), "t.gz", &gzip(&idx_bytes(&[10], &[1, 2, 3])));
        let err = read_idx(&gz).unwrap_err().to_string();
        assert!(err.contains("but holds only 3"), "{err}");
        let gz = write(dir.path(), "u.gz", &gzip(&idx_bytes(&[2], &[1, 2, 3])));
        assert!(read_idx(&gz).unwrap_err().to_string().contains("trailing"));
    }

    #[test]
    fn huge_declared_size_fails_fast() {
        let bytes = idx_bytes(&[1_000_000, 1_000_000], &[1, 2, 3]);
        let err = parse_idx(&bytes, "big").unwrap_err().to_string();
        assert!(err.contains("declares 1000000000000 values"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        for (name, content) in [("big.gz", gzip(&bytes)), ("big.raw", bytes.clone())] {
            let path = write(dir.path(), name, &content);
            let err = read_idx(&path).unwrap_err().to_string();
            assert!(err.contains("more than the"), "{err}");
        }
        assert!(start.elapsed().as_secs() < 2);

        let overflow = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        let err = parse_idx(&overflow, "o").unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        let mut too_many = idx_bytes(&[1; 9], &[0]);
        too_many[3] = 9;
        assert!(
            parse_idx(&too_many, "r")
                .unwrap_err()
                .to_string()
                .contains("1 to 8")
        );
    }

    #[test]
    fn pair_loads_and_checks_counts() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..3 * 2 * 2).map(|v| (v * 20) as u8).collect();
        let images = write(dir.path(), "img", &idx_bytes(&[3, 2, 2], &pixels));
        let labels = write(dir.path(), "lab", &gzip(&idx_bytes(&[3], &[4, 0, 2])));
        let data = load_idx_pair(&images, &labels, "toy").unwrap();
        assert_eq!(data.name, "toy");
        assert_eq!(data.shape, SampleShape::image(1, 2, 2));
        assert_eq!(data.labels, vec![4, 0, 2]);
        assert_eq!(data.num_classes, 5);
        assert_eq!(data.features[1], 20.0 / 255.0);
        data.validate().unwrap();

        let short = write(dir.path(), "short", &idx_bytes(&[2], &[0, 1]));
        let err = load_idx_pair(&images, &short, "toy")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("img holds 3 images") && err.contains("short holds 2 labels"),
            "{err}"
        );
        let err = load_idx_pair(&labels, &labels, "toy")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected an image file with 3 dimensions"),
            "{err}"
        );
        let err = load_idx_pair(&images, &images, "toy")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected a label file with 1 dimension"),
            "{err}"
        );
        let missing = dir.path().join("nope");
        let err = load_idx_pair(&missing, &labels, "toy")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read ") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn mnist_dir_accepts_either_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tiny-mnist");
        std::fs::create_dir(&root).unwrap();
        let images = idx_bytes(&[2, 3, 3], &[7; 18]);
        write(&root, "train-images-idx3-ubyte.gz", &gzip(&images));
        write(&root, "train-labels-idx1-ubyte", &idx_bytes(&[2], &[0, 1]));
        write(&root, "t10k-images-idx3-ubyte", &images);
        let err = load_mnist_dir(&root).unwrap_err().to_string();
        assert!(err.contains("cannot find t10k-labels-idx1-ubyte"), "{err}");
        assert!(err.contains("tiny-mnist"), "{err}");
        write(
            &root,
            "t10k-labels-idx1-ubyte.gz",
            &gzip(&idx_bytes(&[2], &[3, 3])),
        );
        // The compressed copy wins over a corrupt raw one.
        write(&root, "t10k-labels-idx1-ubyte", b"garbage");
        let (train, test) = load_mnist_dir(&root).unwrap();
        let err = load_mnist_dir(&root.join("absent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "absent: expected a folder of MNIST-style IDX files, found no such folder"
            ),
            "{err}"
        );
        assert_eq!(train.name, "tiny-mnist/train");
        assert_eq!(test.name, "tiny-mnist/test");
        assert_eq!((train.num_classes, test.num_classes), (4, 4));
        assert_eq!(train.len(), 2);
        assert_eq!(test.labels, vec![3, 3]);
    }
}
