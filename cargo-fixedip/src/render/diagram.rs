//! The network as a diagram: the [`NetworkGraph`]s of every stack, drawn in Mermaid
//! ([`Mermaid`]) or Graphviz dot ([`Dot`]). Both are the same walk over the graph; a dialect only
//! says how a container, a box and an edge are written.
//!
//! The VPC and its AZs are containers; subnets, NATs, the internet gateway, functions and the
//! subnets of a network the user runs are boxes; an Elastic IP is a second line of its NAT's box;
//! what carries no traffic (route tables, which are the edges, security groups, the role, kept
//! addresses) is left to the tree.

use std::fmt::Write as _;

use super::graph::{Change, EdgeKind, NetworkGraph, Node, NodeKind, INTERNET};

/// One stack to draw: its heading and its graph.
pub struct Drawn<'g> {
    pub heading: String,
    pub graph: &'g NetworkGraph,
}

/// How one diagram language writes each part.
pub trait Dialect {
    fn header(&self, out: &mut String);
    fn open(&self, out: &mut String, indent: &str, id: &str, label: &str);
    fn close(&self, out: &mut String, indent: &str);
    fn node(&self, out: &mut String, indent: &str, id: &str, lines: &[String], node: &Node);
    fn edge(
        &self,
        out: &mut String,
        from: &str,
        to: &str,
        kind: EdgeKind,
        destination: Option<&str>,
    );
    fn footer(&self, out: &mut String);
}

pub fn draw(dialect: &impl Dialect, stacks: &[Drawn<'_>]) -> String {
    let mut out = String::new();
    dialect.header(&mut out);
    for (s, stack) in stacks.iter().enumerate() {
        let graph = stack.graph;
        let id = |node: &str| match node {
            INTERNET => INTERNET.to_owned(),
            node => format!("s{s}_{node}"),
        };
        if let Some(vpc) = graph.node("vpc") {
            let heading = format!("{} · {}", stack.heading, vpc.label);
            dialect.open(&mut out, "    ", &id(&vpc.id), &heading);
            contents(dialect, graph, &vpc.id, &id, "        ", &mut out);
            dialect.close(&mut out, "    ");
        }
        for edge in &graph.edges {
            if drawn(graph, &edge.from) && drawn(graph, &edge.to) {
                let destination = edge.destination.as_deref();
                dialect.edge(
                    &mut out,
                    &id(&edge.from),
                    &id(&edge.to),
                    edge.kind,
                    destination,
                );
            }
        }
    }
    dialect.footer(&mut out);
    out
}

/// What is under `parent`: containers with their contents, boxes, and the children of what is
/// not drawn (the functions' grouping).
fn contents(
    dialect: &impl Dialect,
    graph: &NetworkGraph,
    parent: &str,
    id: &dyn Fn(&str) -> String,
    indent: &str,
    out: &mut String,
) {
    for node in graph.children(parent) {
        match shape(node.kind) {
            Shape::Container => {
                dialect.open(out, indent, &id(&node.id), &node.label.to_string());
                contents(dialect, graph, &node.id, id, &format!("{indent}    "), out);
                dialect.close(out, indent);
            }
            Shape::Box => {
                let mut lines = vec![node.label.to_string()];
                let folded = graph
                    .children(&node.id)
                    .filter(|c| shape(c.kind) == Shape::Folded);
                lines.extend(folded.map(|child| child.label.to_string()));
                dialect.node(out, indent, &id(&node.id), &lines, node);
                contents(dialect, graph, &node.id, id, indent, out);
            }
            Shape::Folded | Shape::Hidden => contents(dialect, graph, &node.id, id, indent, out),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Container,
    Box,
    /// A line of its parent's box.
    Folded,
    Hidden,
}

fn shape(kind: NodeKind) -> Shape {
    match kind {
        NodeKind::Vpc | NodeKind::AvailabilityZone => Shape::Container,
        NodeKind::InternetGateway
        | NodeKind::PublicSubnet
        | NodeKind::PrivateSubnet
        | NodeKind::NatGateway
        | NodeKind::NatInstance
        | NodeKind::YourSubnet
        | NodeKind::Function
        | NodeKind::Internet => Shape::Box,
        NodeKind::ElasticIp => Shape::Folded,
        NodeKind::RouteTable
        | NodeKind::RemovedSlot
        | NodeKind::SurplusSlot
        | NodeKind::RetainedIp
        | NodeKind::SecurityGroup
        | NodeKind::Role
        | NodeKind::GatewayEndpoint
        | NodeKind::InterfaceEndpoint
        | NodeKind::Functions => Shape::Hidden,
    }
}

/// Whether an edge's end is drawn as a box (the internet always is, in the header).
fn drawn(graph: &NetworkGraph, id: &str) -> bool {
    id == INTERNET
        || graph
            .node(id)
            .is_some_and(|node| shape(node.kind) == Shape::Box)
}

/// Whether a box is on its way out (deleted) or waits (held back): drawn dashed.
fn dashed(node: &Node) -> bool {
    matches!(node.status, Some(Change::Delete | Change::HeldBack))
}

/// A Mermaid flowchart.
pub struct Mermaid;

impl Dialect for Mermaid {
    fn header(&self, out: &mut String) {
        out.push_str("flowchart TB\n    internet((internet))\n");
        out.push_str("    classDef dashed stroke-dasharray: 5 5\n");
    }

    fn open(&self, out: &mut String, indent: &str, id: &str, label: &str) {
        let _ = writeln!(out, "{indent}subgraph {id}[\"{}\"]", mermaid_text(label));
    }

    fn close(&self, out: &mut String, indent: &str) {
        let _ = writeln!(out, "{indent}end");
    }

    fn node(&self, out: &mut String, indent: &str, id: &str, lines: &[String], node: &Node) {
        let text: Vec<String> = lines.iter().map(|line| mermaid_text(line)).collect();
        let text = text.join("<br/>");
        let class = if dashed(node) { ":::dashed" } else { "" };
        let _ = match node.kind {
            NodeKind::Function => writeln!(out, "{indent}{id}{{{{\"{text}\"}}}}{class}"),
            _ => writeln!(out, "{indent}{id}[\"{text}\"]{class}"),
        };
    }

    fn edge(
        &self,
        out: &mut String,
        from: &str,
        to: &str,
        kind: EdgeKind,
        destination: Option<&str>,
    ) {
        let _ = match (kind, destination) {
            (EdgeKind::Route, Some(destination)) => {
                writeln!(out, "    {from} -- \"{destination}\" --> {to}")
            }
            (EdgeKind::Route | EdgeKind::Exit, _) => writeln!(out, "    {from} --> {to}"),
            (EdgeKind::PlacedIn, _) => writeln!(out, "    {from} --- {to}"),
            (EdgeKind::Attached, _) => writeln!(out, "    {from} -.- {to}"),
        };
    }

    fn footer(&self, _: &mut String) {}
}

/// Mermaid ends a quoted label at `"`: written as its entity.
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
}

/// A Graphviz graph (`dot -Tsvg`).
pub struct Dot;

impl Dialect for Dot {
    fn header(&self, out: &mut String) {
        out.push_str("digraph fixedip {\n    rankdir=TB;\n    node [shape=box, fontname=\"Helvetica\"];\n    internet [shape=ellipse];\n");
    }

    fn open(&self, out: &mut String, indent: &str, id: &str, label: &str) {
        let _ = writeln!(out, "{indent}subgraph cluster_{id} {{");
        let _ = writeln!(out, "{indent}    label=\"{}\";", dot_text(label));
    }

    fn close(&self, out: &mut String, indent: &str) {
        let _ = writeln!(out, "{indent}}}");
    }

    fn node(&self, out: &mut String, indent: &str, id: &str, lines: &[String], node: &Node) {
        let text: Vec<String> = lines.iter().map(|line| dot_text(line)).collect();
        let mut attributes = format!("label=\"{}\"", text.join("\\n"));
        if node.kind == NodeKind::Function {
            attributes.push_str(", shape=component");
        }
        if dashed(node) {
            attributes.push_str(", style=dashed");
        }
        let _ = writeln!(out, "{indent}{id} [{attributes}];");
    }

    fn edge(
        &self,
        out: &mut String,
        from: &str,
        to: &str,
        kind: EdgeKind,
        destination: Option<&str>,
    ) {
        let _ = match (kind, destination) {
            (EdgeKind::Route, Some(destination)) => {
                writeln!(out, "    {from} -> {to} [label=\"{destination}\"];")
            }
            (EdgeKind::Route | EdgeKind::Exit, _) => writeln!(out, "    {from} -> {to};"),
            (EdgeKind::PlacedIn, _) => writeln!(out, "    {from} -> {to} [arrowhead=none];"),
            (EdgeKind::Attached, _) => {
                writeln!(out, "    {from} -> {to} [style=dashed, arrowhead=none];")
            }
        };
    }

    fn footer(&self, out: &mut String) {
        out.push_str("}\n");
    }
}

/// dot ends a quoted label at `"` and reads `\` as an escape.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
