//! The network as a tree, one line per node of the [`NetworkGraph`] under its VPC, each with what
//! the plan does to it in an aligned column: what `plan` prints, and `destroy` before it asks.

use std::fmt::Write as _;

use super::graph::{Change, NetworkGraph, Node};
use crate::output::{style, styled};

/// One line: its indentation and branch, what it is, and its status.
struct Row<'g> {
    branch: String,
    node: &'g Node,
}

pub fn tree(graph: &NetworkGraph) -> String {
    let mut rows = Vec::new();
    if let Some(root) = graph.node("vpc") {
        rows.push(Row {
            branch: String::new(),
            node: root,
        });
        walk(graph, &root.id, "", &mut rows);
    }
    let width = rows
        .iter()
        .map(|row| visible_len(&row.branch) + visible_len(&row.node.label.to_string()))
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for row in rows {
        let label = row.node.label.to_string();
        let pad = width - visible_len(&row.branch) - visible_len(&label);
        let _ = write!(
            text,
            "{}{}",
            styled(style::DIM, &row.branch),
            row.node.label.styled()
        );
        if let Some(change) = row.node.status {
            let id = row.node.resource_id.as_deref().unwrap_or_default();
            let _ = write!(text, "{:pad$}   {}", "", status_text(change, id));
        }
        text.push('\n');
    }
    text
}

/// Every node under `id`, depth first, each child's branch drawn from whether it is the last.
fn walk<'g>(graph: &'g NetworkGraph, id: &'g str, prefix: &str, rows: &mut Vec<Row<'g>>) {
    let children: Vec<&Node> = graph.children(id).collect();
    for (index, child) in children.iter().enumerate() {
        let last = index + 1 == children.len();
        rows.push(Row {
            branch: format!("{prefix}{}", if last { "└── " } else { "├── " }),
            node: child,
        });
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        walk(graph, &child.id, &deeper, rows);
    }
}

fn status_text(change: Change, id: &str) -> String {
    match change {
        Change::Create => styled(style::CREATE, "+ create").to_string(),
        Change::Change => styled(style::CHANGE, format_args!("~ change {id}")).to_string(),
        Change::Keep => styled(style::KEEP, format_args!("  keep {id}")).to_string(),
        Change::HeldBack => {
            styled(style::CHANGE, "! held back until the new IP is allowed").to_string()
        }
        Change::Delete => styled(style::CHANGE, format_args!("- delete {id}")).to_string(),
        Change::Absent => styled(style::KEEP, "  absent").to_string(),
    }
}

/// The width of text on a terminal: characters, not bytes, and escape sequences count for nothing.
fn visible_len(text: &str) -> usize {
    let mut plain = Vec::new();
    let _ = std::io::Write::write_all(&mut anstream::StripStream::new(&mut plain), text.as_bytes());
    String::from_utf8_lossy(&plain).chars().count()
}
