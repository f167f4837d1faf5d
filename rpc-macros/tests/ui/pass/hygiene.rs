//! The generated code must not depend on the user's imports or the prelude.

/// A user error type, defined where the prelude is available.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Error {
    Rpc(rpc_core::RpcError),
}

impl From<rpc_core::RpcError> for Error {
    fn from(e: rpc_core::RpcError) -> Self {
        Error::Rpc(e)
    }
}

mod m {
    #![no_implicit_prelude]

    use crate::Error;

    #[::rpc_core::remote(name = "hygiene.Store")]
    pub trait Store {
        async fn put(
            &self,
            key: ::std::string::String,
            value: ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<(), Error>;
        async fn get(
            &self,
            key: ::std::string::String,
        ) -> ::core::result::Result<::core::option::Option<::std::vec::Vec<u8>>, Error>;
        async fn peer(
            &self,
        ) -> ::core::result::Result<::core::option::Option<StoreRef>, ::rpc_core::RpcError>;
    }

    pub struct Mem;

    impl Store for Mem {
        async fn put(
            &self,
            _key: ::std::string::String,
            _value: ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<(), Error> {
            ::core::result::Result::Ok(())
        }
        async fn get(
            &self,
            _key: ::std::string::String,
        ) -> ::core::result::Result<::core::option::Option<::std::vec::Vec<u8>>, Error> {
            ::core::result::Result::Ok(::core::option::Option::None)
        }
        async fn peer(
            &self,
        ) -> ::core::result::Result<::core::option::Option<StoreRef>, ::rpc_core::RpcError>
        {
            ::core::result::Result::Ok(::core::option::Option::None)
        }
    }
}

fn main() {
    let r = m::StoreRef::new(m::Mem);
    assert!(r.is_local());
}
