//! The container user's passwd entry, read inside the container after the root is pivoted:
//! runc gives the process `HOME` from it when the config's env has none.

use std::path::Path;

/// `env` with `HOME` added when it has none: the home directory of `uid` in the
/// container's /etc/passwd, or `/` when there is no such file or entry (as runc).
pub fn with_home(env: &[String], uid: u32, passwd: &Path) -> Option<Vec<String>> {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return None;
    }
    let text = read_regular(passwd).unwrap_or_default();
    let home = home_of(&text, uid).unwrap_or("/");
    let mut out = env.to_vec();
    out.push(format!("HOME={home}"));
    Some(out)
}

/// The file's text if it is a regular file: the image owns it, and a FIFO or device there
/// must not block or feed the runtime (opened non-blocking, checked, read up to 1 MiB).
fn read_regular(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The home field of the first passwd line whose uid is `uid`.
fn home_of(passwd: &str, uid: u32) -> Option<&str> {
    field_of(passwd, uid, 5)
}

/// Field `index` (0 name, 5 home, …) of the first well-formed passwd line for `uid`.
pub fn field_of(passwd: &str, uid: u32, index: usize) -> Option<&str> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| f[index.min(6)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment line\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        broken:x:2\n\
        app:x:1000:1000::/home/app:/bin/sh\n";

    #[test]
    fn home_comes_from_the_users_entry() {
        assert_eq!(home_of(PASSWD, 0), Some("/root"));
        assert_eq!(home_of(PASSWD, 1000), Some("/home/app"));
        assert_eq!(home_of(PASSWD, 2), None);
        assert_eq!(home_of(PASSWD, 4242), None);
    }

    #[test]
    fn an_env_home_is_kept_and_a_missing_file_gives_root() {
        let env = vec!["PATH=/bin".to_string(), "HOME=/mine".to_string()];
        assert_eq!(with_home(&env, 0, Path::new("/nonexistent")), None);
        let env = vec!["PATH=/bin".to_string()];
        assert_eq!(
            with_home(&env, 7, Path::new("/nonexistent/passwd")),
            Some(vec!["PATH=/bin".to_string(), "HOME=/".to_string()])
        );
    }
}
