//! A station's 32-byte secret key. Its `Debug` never prints the key, so it cannot leak into logs.

use std::fmt;

/// HMAC-SHA256 key shared by one station and the server.
#[derive(Clone, PartialEq, Eq)]
pub struct StationKey(pub [u8; 32]);

/// Why a text is not a station key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("a station key is 64 hexadecimal characters (32 bytes)")]
    Format,
    /// All zeros: what an unprovisioned station or a placeholder carries, and no secret.
    #[error("an all-zero station key is no secret: generate a random one")]
    AllZero,
}

impl StationKey {
    /// Parses the 64-hex-character form used by the API and the CLI.
    pub fn from_hex(text: &str) -> Result<Self, KeyFormatError> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).map_err(|_| KeyFormatError::Format)?;
        if key == [0u8; 32] {
            return Err(KeyFormatError::AllZero);
        }
        Ok(Self(key))
    }

    /// The 64-hex-character form, for provisioning a station (never for logs).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for StationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StationKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_redacts_debug() {
        let text = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1F";
        let key = StationKey::from_hex(text).expect("valid");
        assert_eq!(key.0[1], 1);
        assert_eq!(key.0[31], 0x1f);
        assert_eq!(format!("{key:?}"), "StationKey(<redacted>)");
        assert_eq!(
            StationKey::from_hex(&text[..62]),
            Err(KeyFormatError::Format)
        );
        assert_eq!(
            StationKey::from_hex(&text.replace('0', "g")),
            Err(KeyFormatError::Format)
        );
        assert_eq!(
            StationKey::from_hex(&"0".repeat(64)),
            Err(KeyFormatError::AllZero)
        );
    }
}
