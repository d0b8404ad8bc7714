//! What the browser tests do on a page through WebDriver: type, click, submit and wait,
//! read.

use std::time::Duration;

use embargo_test_support::thirtyfour::prelude::*;

/// Types `text` into the field with id `id`, replacing what it held.
pub async fn fill(driver: &WebDriver, id: &str, text: &str) {
    let element = driver.find(By::Id(id)).await.unwrap_or_else(|_| panic!("no #{id}"));
    element.clear().await.unwrap();
    element.send_keys(text).await.unwrap();
}

/// Clicks the element `css` finds, scrolled into view first.
pub async fn click(driver: &WebDriver, css: &str) {
    let element = driver.find(By::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    element.scroll_into_view().await.unwrap();
    element.click().await.unwrap();
}

/// Clicks a submit button and waits until the browser has left the page.
pub async fn submit(driver: &WebDriver, css: &str) {
    let old = driver.find(By::Tag("html")).await.unwrap();
    click(driver, css).await;
    for _ in 0..400 {
        if !old.is_present().await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("clicking {css} did not leave {}", driver.current_url().await.unwrap());
}

/// The visible text of the element `css` finds.
pub async fn text_of(driver: &WebDriver, css: &str) -> String {
    driver.find(By::Css(css)).await.unwrap_or_else(|_| panic!("no {css}")).text().await.unwrap_or_default()
}
