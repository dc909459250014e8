#![deny(warnings)]
// What `#[fixed_egress]` sits on is given back unchanged: attributes below it (as `#[tokio::main]`
// would be), docs, visibility, generics, `async`, `unsafe`, `const`, raw names. The calls in `main`
// prove it at run time.
use fixedip_macros::fixed_egress;
use std::future::Future;

/// Runs the handler.
#[fixed_egress(azs = 2)]
#[inline(never)]
#[must_use]
#[cfg_attr(all(), allow(clippy::needless_lifetimes))]
pub async fn serve<'a, T>(name: &'a T) -> String
where
    T: std::fmt::Display + ?Sized,
{
    format!("hello, {name}")
}

#[fixed_egress]
pub(crate) const fn r#const(x: u32) -> u32 {
    x + 1
}

#[fixed_egress(stack = "unsafe-one")]
unsafe fn raw(pointer: *const u8) -> u8 {
    *pointer
}

#[fixed_egress]
extern "C" fn exported() -> i32 {
    7
}

fn main() {
    let future = serve("lambda");
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(greeting) => assert_eq!(greeting, "hello, lambda"),
        std::task::Poll::Pending => panic!("serve never waits"),
    }
    const TWO: u32 = r#const(1);
    assert_eq!(TWO, 2);
    assert_eq!(unsafe { raw(&42) }, 42);
    assert_eq!(exported(), 7);
}
