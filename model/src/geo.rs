//! Geographic positions (WGS 84 degrees) and their conversion to and from the wire's ×10⁷ integers.

use serde::{Deserialize, Serialize};

/// A point on the earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// Why a latitude/longitude pair is not a place on earth.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("latitude {0} is outside -90..=90")]
    Latitude(f64),
    #[error("longitude {0} is outside -180..=180")]
    Longitude(f64),
}

impl GeoPoint {
    /// A checked point: both coordinates finite and in range.
    pub fn new(lat: f64, lon: f64) -> Result<Self, GeoError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::Latitude(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::Longitude(lon));
        }
        Ok(Self { lat, lon })
    }

    /// From the wire's latitude × 10⁷ and longitude × 10⁷.
    pub fn from_e7(lat_e7: i32, lon_e7: i32) -> Result<Self, GeoError> {
        Self::new(f64::from(lat_e7) / 1e7, f64::from(lon_e7) / 1e7)
    }

    /// To the wire's ×10⁷ integers (rounded to the nearest, about 1 cm).
    pub fn to_e7(self) -> (i32, i32) {
        // In range by construction, so the casts cannot saturate.
        (
            (self.lat * 1e7).round() as i32,
            (self.lon * 1e7).round() as i32,
        )
    }
}

/// An area bounded by two latitudes and two longitudes (degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoBox {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_and_nan() {
        assert_eq!(GeoPoint::new(91.0, 0.0), Err(GeoError::Latitude(91.0)));
        assert_eq!(GeoPoint::new(0.0, -180.5), Err(GeoError::Longitude(-180.5)));
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
    }

    #[test]
    fn e7_round_trip() {
        let p = GeoPoint::from_e7(232_642_000, 1_165_931_000).expect("valid");
        assert_eq!(p.to_e7(), (232_642_000, 1_165_931_000));
        assert!(GeoPoint::from_e7(i32::MAX, 0).is_err());
    }
}
