//! Inline SVG icons (no external assets), drawn with `currentColor` strokes on a 24-unit grid.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Dashboard,
    Providers,
    Tester,
    Requests,
    Keys,
    Teams,
    System,
    Cost,
    Close,
    Copy,
    Plus,
    Trash,
    Send,
    Refresh,
}

impl Icon {
    fn path(self) -> &'static str {
        match self {
            Icon::Dashboard => "M3 13h8V3H3zM13 21h8V11h-8zM3 21h8v-6H3zM13 3v6h8V3z",
            Icon::Providers => "M4 6h16M4 12h16M4 18h16M7 6v.01M7 12v.01M7 18v.01",
            Icon::Tester => "M8 9l-4 3 4 3M16 9l4 3-4 3M13.5 6l-3 12",
            Icon::Requests => "M4 5h16M4 10h16M4 15h10M4 20h7",
            Icon::Keys => {
                "M8 20a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM10.9 13.1L20 4M16.5 7.5l2.5 2.5M14 10l2 2"
            }
            Icon::System => {
                "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM19 12l2-1-1-3-2.2.2-1.3-1.3L16.7 5l-3-1-1 2h-1.4l-1-2-3 1 .2 2.2L6.2 8.5 4 8.3 3 11.3l2 1v1.4l-2 1 1 3 2.2-.2 1.3 1.3-.2 2.2 3 1 1-2h1.4l1 2 3-1-.2-2.2 1.3-1.3 2.2.2 1-3-2-1z"
            }
            Icon::Teams => {
                "M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM3 20c0-3 3-5 6-5s6 2 6 5M16 5a3 3 0 0 1 0 6M21 20c0-2.5-1.8-4.4-4-4.9"
            }
            Icon::Cost => {
                "M12 3v18M17 7.5C17 5.6 14.8 5 12 5S7 6 7 8s2 2.7 5 3.2 5 1.3 5 3.5-2.2 3.3-5 3.3-5-.8-5-2.8"
            }
            Icon::Close => "M6 6l12 12M18 6L6 18",
            Icon::Copy => "M9 9h11v11H9zM5 15H4V4h11v1",
            Icon::Plus => "M12 5v14M5 12h14",
            Icon::Trash => "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
            Icon::Send => "M4 12l16-8-6 16-2-7z",
            Icon::Refresh => {
                "M20 11a8 8 0 0 0-14.6-4.5L4 8M4 4v4h4M4 13a8 8 0 0 0 14.6 4.5L20 16M20 20v-4h-4"
            }
        }
    }
}

#[component]
pub fn Svg(icon: Icon) -> impl IntoView {
    view! {
        <svg
            class="icon"
            viewBox="0 0 24 24"
            width="18"
            height="18"
            fill="none"
            stroke="currentColor"
            stroke-width="1.8"
            stroke-linecap="round"
            stroke-linejoin="round"
            aria-hidden="true"
            focusable="false"
        >
            <path d=icon.path()></path>
        </svg>
    }
}
