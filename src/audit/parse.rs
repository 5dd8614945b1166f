//! Input lines: a bare hash, `user:hash`, or a pwdump / secretsdump line, to a [`Credential`].

use crate::hash::{Hash, HashError, HashKind};

/// Why a line was not understood. Messages never quote the line (it may hold a hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The hash field is neither 40 (SHA-1) nor 32 (NTLM) characters.
    #[error("expected a 40-hex SHA-1 or 32-hex NTLM hash")]
    HashLength,
    /// The hash field has a non-hex character.
    #[error("the hash is not hexadecimal")]
    NotHex,
    /// A pwdump line without an NT hash.
    #[error("pwdump line without an NT hash")]
    NoNtHash,
    /// Not UTF-8 (user names must be text).
    #[error("not valid UTF-8")]
    NotUtf8,
    /// Longer than [`super::MAX_LINE_BYTES`] (skipped unread).
    #[error("line longer than {} bytes", super::MAX_LINE_BYTES)]
    TooLong,
}

impl From<HashError> for LineError {
    fn from(e: HashError) -> LineError {
        match e {
            HashError::Length(_) => LineError::HashLength,
            HashError::NotHex => LineError::NotHex,
        }
    }
}

/// One parsed input line: an account (if named) and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The account name, when the line has one.
    pub user: Option<&'a str>,
    /// The credential's hash.
    pub hash: Hash,
}

/// Parses one line (without its line ending): `Ok(None)` for blank lines and `#` comments.
pub fn parse_line(line: &[u8]) -> Result<Option<Credential<'_>>, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line).trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let line = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    let hash_of = |text: &str| Hash::parse_hex(text.trim().as_bytes()).map_err(LineError::from);
    // pwdump / secretsdump: user:rid:lmhash:nthash:::  (the RID is decimal)
    let mut fields = line.splitn(5, ':');
    if let (Some(user), Some(rid), Some(_lm), Some(nt)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    {
        if !rid.is_empty() && rid.bytes().all(|b| b.is_ascii_digit()) {
            let nt = nt.trim();
            if nt.is_empty() || nt.starts_with("NO PASSWORD") {
                return Err(LineError::NoNtHash);
            }
            let hash = Hash::parse_hex_kind(HashKind::Ntlm, nt.as_bytes())?;
            return Ok(Some(Credential {
                user: Some(user).filter(|u| !u.is_empty()),
                hash,
            }));
        }
    }
    match line.rsplit_once(':') {
        Some((user, hash)) => Ok(Some(Credential {
            user: Some(user.trim()).filter(|u| !u.is_empty()),
            hash: hash_of(hash)?,
        })),
        None => Ok(Some(Credential {
            user: None,
            hash: hash_of(line)?,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
    const NT: &str = "8846F7EAEE8FB117AD06BDD830B7586C";

    #[test]
    fn parses_each_input_form() {
        let bare = parse_line(SHA1.as_bytes()).unwrap().unwrap();
        assert_eq!((bare.user, bare.hash.kind()), (None, HashKind::Sha1));
        let line = format!("alice:{}\r", NT.to_lowercase());
        let user = parse_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (user.user, user.hash.kind()),
            (Some("alice"), HashKind::Ntlm)
        );
        let line =
            format!("CORP\\bob:1104:aad3b435b51404eeaad3b435b51404ee:{NT}::: (status=Enabled)");
        let pw = parse_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(pw.user, Some("CORP\\bob"));
        assert_eq!(pw.hash.to_hex(), NT);
        assert_eq!(parse_line(b"  # comment").unwrap(), None);
        assert_eq!(parse_line(b"").unwrap(), None);
        assert_eq!(parse_line(b"carol:abc"), Err(LineError::HashLength));
        assert_eq!(
            parse_line(format!("{}Z", &SHA1[..39]).as_bytes()),
            Err(LineError::NotHex)
        );
        assert_eq!(
            parse_line(
                b"dave:500:NO PASSWORD*********************:NO PASSWORD*********************:::"
            ),
            Err(LineError::NoNtHash)
        );
    }
}
