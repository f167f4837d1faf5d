//! Open, by-value trait objects (typetag) cross the wire like any serde value:
//! a caller can pass a type the interface does not name, as long as both
//! programs link its registration.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use rpc_core::{Config, Node, RpcError, remote};
use serde::{Deserialize, Serialize};

/// A shape, open to new kinds.
#[typetag::serde(tag = "shape")]
pub trait Shape: Send + Sync + std::fmt::Debug {
    /// Its area.
    fn area(&self) -> f64;
}

/// A circle.
#[derive(Debug, Serialize, Deserialize)]
pub struct Circle {
    /// Radius.
    pub r: f64,
}

// Explicit wire names: renaming the Rust type never changes the wire.
#[typetag::serde(name = "test.circle")]
impl Shape for Circle {
    fn area(&self) -> f64 {
        std::f64::consts::PI * self.r * self.r
    }
}

/// A rectangle.
#[derive(Debug, Serialize, Deserialize)]
pub struct Rect {
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

#[typetag::serde(name = "test.rect")]
impl Shape for Rect {
    fn area(&self) -> f64 {
        self.w * self.h
    }
}

/// Measures shapes it has never heard of by name.
#[remote(name = "test.Geometry")]
pub trait Geometry {
    /// Total area of the shapes.
    async fn total_area(&self, shapes: Vec<Box<dyn Shape>>) -> Result<f64, RpcError>;
    /// The largest shape, sent back by value.
    async fn largest(
        &self,
        shapes: Vec<Box<dyn Shape>>,
    ) -> Result<Option<Box<dyn Shape>>, RpcError>;
}

struct G;
impl Geometry for G {
    async fn total_area(&self, shapes: Vec<Box<dyn Shape>>) -> Result<f64, RpcError> {
        Ok(shapes.iter().map(|s| s.area()).sum())
    }
    async fn largest(
        &self,
        shapes: Vec<Box<dyn Shape>>,
    ) -> Result<Option<Box<dyn Shape>>, RpcError> {
        Ok(shapes
            .into_iter()
            .max_by(|a, b| a.area().total_cmp(&b.area())))
    }
}

#[test]
fn each_tagged_impl_round_trips_through_cbor() {
    for s in [
        Box::new(Circle { r: 2.0 }) as Box<dyn Shape>,
        Box::new(Rect { w: 2.0, h: 3.0 }),
    ] {
        let mut bytes = Vec::new();
        ciborium::into_writer(&s, &mut bytes).unwrap();
        let back: Box<dyn Shape> = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(back.area(), s.area());
    }
}

#[tokio::test]
async fn trait_objects_travel_by_value_both_ways() {
    let server = Node::new(Config::default());
    let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
    server.bind_bootstrap("geo", &GeometryRef::new(G)).unwrap();
    let client = Node::new(Config::default());
    let geo: GeometryRef = client.lookup(&addr, "geo").await.unwrap();
    let shapes: Vec<Box<dyn Shape>> = vec![
        Box::new(Rect { w: 2.0, h: 3.0 }),
        Box::new(Circle { r: 1.0 }),
    ];
    let total = geo.total_area(shapes).await.unwrap();
    assert!((total - (6.0 + std::f64::consts::PI)).abs() < 1e-9);
    let big = geo
        .largest(vec![
            Box::new(Circle { r: 1.0 }),
            Box::new(Circle { r: 3.0 }),
        ])
        .await
        .unwrap()
        .unwrap();
    assert!((big.area() - 9.0 * std::f64::consts::PI).abs() < 1e-9);
    assert!(format!("{big:?}").contains("Circle"));
}
