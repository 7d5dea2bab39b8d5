//! `linux.resources.hugepageLimits`: the host's huge page sizes, named as runc names them,
//! and the limit files of each (v1 `.limit_in_bytes`, v2 `.max`, and `.rsvd.` where the
//! kernel has reservation limits).

use oci_spec::runtime::LinuxHugepageLimit;

use super::convert::max_or;
use super::resources::{Controllers, Dir, unsupported};
use super::{CgroupError, write};

/// hugetlb.<size>.limit_in_bytes (v1) or .max (v2) per limit, in runc's naming of the page
/// sizes ("2MB", "1GB"); a size the host lacks is refused naming the field and the sizes it
/// has. The reservation limit (.rsvd.*, kernel 5.7+) gets the same value where the kernel
/// has it, as runc 1.2+ does, so reserved-but-unfaulted pages count too.
pub(super) fn apply(
    c: &Controllers,
    limits: &[LinuxHugepageLimit],
    host: &[String],
) -> Result<(), CgroupError> {
    let dir = c.either("hugetlb", "hugepageLimits")?;
    for (i, h) in limits.iter().enumerate() {
        let size = h.page_size();
        // An empty list (no /sys/kernel/mm/hugepages) cannot tell: the write names the file.
        if !host.is_empty() && !host.iter().any(|s| s == size) {
            return Err(unsupported(
                &format!("hugepageLimits[{i}].pageSize"),
                format!(
                    "{size:?} is not a huge page size of this host (it has: {})",
                    host.join(", ")
                ),
            ));
        }
        let (d, suffix, value) = match &dir {
            Dir::V1(d) => (d, "limit_in_bytes", h.limit().to_string()),
            Dir::V2(d) => (d, "max", max_or(h.limit())),
        };
        write(&d.join(format!("hugetlb.{size}.{suffix}")), &value)?;
        let rsvd = d.join(format!("hugetlb.{size}.rsvd.{suffix}"));
        if rsvd.exists() {
            write(&rsvd, &value)?;
        }
    }
    Ok(())
}

/// The host's huge page sizes named as runc names them: /sys/kernel/mm/hugepages/
/// hugepages-2048kB → "2MB", hugepages-1048576kB → "1GB", hugepages-64kB → "64KB".
pub(super) fn host_sizes() -> Vec<String> {
    let mut sizes: Vec<(u64, String)> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, page_size_name(kb)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, n)| n).collect()
}

/// A size in kB in the largest binary unit that divides it (KB, MB, GB, TB, PB).
fn page_size_name(kb: u64) -> String {
    let mut v = kb;
    for unit in ["KB", "MB", "GB", "TB"] {
        if v < 1024 || v % 1024 != 0 {
            return format!("{v}{unit}");
        }
        v /= 1024;
    }
    format!("{v}PB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_sizes_named_as_runc() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1048576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
        assert_eq!(page_size_name(32768), "32MB");
        assert_eq!(page_size_name(16 * 1024 * 1024), "16GB");
    }
}
