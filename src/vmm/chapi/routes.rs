//! Which endpoint a request names, as the real server's route table decides: the path must be
//! exactly `/api/v1/<name>` (no trailing slash; a query string is ignored; an absolute-form
//! target `http://localhost/api/v1/...` is accepted, as `micro_http`'s `get_abs_path` does), and
//! each endpoint answers one method.

use super::codes::Endpoint;

/// The path prefix of every endpoint.
pub const API_ROOT: &str = "/api/v1/";

/// One request, as the pure core sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, e.g. `PUT`.
    pub method: &'a str,
    /// The request target, e.g. `/api/v1/vm.boot`.
    pub path: &'a str,
    /// The body (empty when there is none).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request.
    pub fn new(method: &'a str, path: &'a str, body: &'a [u8]) -> Self {
        Self { method, path, body }
    }
}

/// What a method and path name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An endpoint, with the method it answers.
    Endpoint(Endpoint),
    /// An endpoint, with a method it does not answer.
    WrongMethod(Endpoint),
    /// No endpoint.
    UnknownPath,
}

/// The path part of a request target: without `scheme://authority`, query or fragment.
pub fn abs_path(target: &str) -> &str {
    let without_authority = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    without_authority
        .split(['?', '#'])
        .next()
        .unwrap_or(without_authority)
}

/// Routes a request.
pub fn route(method: &str, target: &str) -> Route {
    let endpoint = abs_path(target)
        .strip_prefix(API_ROOT)
        .and_then(Endpoint::from_name);
    match endpoint {
        None => Route::UnknownPath,
        Some(e) if e.method() == method => Route::Endpoint(e),
        Some(e) => Route::WrongMethod(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_as_the_real_table_does() {
        assert_eq!(
            route("PUT", "/api/v1/vm.boot"),
            Route::Endpoint(Endpoint::Boot)
        );
        assert_eq!(
            route("GET", "http://localhost/api/v1/vm.info?x=1"),
            Route::Endpoint(Endpoint::Info)
        );
        assert_eq!(
            route("GET", "/api/v1/vm.boot"),
            Route::WrongMethod(Endpoint::Boot)
        );
        assert_eq!(
            route("POST", "/api/v1/vm.create"),
            Route::WrongMethod(Endpoint::Create)
        );
        for unknown in [
            "/api/v1/vm.boot/",
            "/api/v2/vm.boot",
            "/vm.boot",
            "/api/v1/",
            "*",
        ] {
            assert_eq!(route("PUT", unknown), Route::UnknownPath, "{unknown}");
        }
    }
}
