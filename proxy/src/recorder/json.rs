//! The event log's JSON, written by hand.
//!
//! serde_json spent most of the recorder's instructions on these lines: every key
//! escaped byte by byte, the `#[serde(flatten)]` and internally tagged enums going through
//! map serialisers, every write through `io::Write`. Here every key with its quotes,
//! colon and the comma before it is one constant copied in one go, values go straight
//! into the log's block buffer, and nothing is built on the way. The bytes are
//! serde_json's exactly (the field order of the serde derives, `null` for a `None`, the
//! `skip_serializing_if` fields left out, serde_json's string escaping): debug builds
//! compare every line with `serde_json::to_vec` (see `EventHead::write`), and the tests
//! below compare every event kind of the real captures and the engine seeds.
//!
//! Structs are destructured without `..`, so a field added to an event type does not
//! compile until it is written here too.

use std::fmt::Write as _;
use std::net::SocketAddr;

use dicomtap_analyzer::conformance::{ConformanceFinding, Evidence, Related};
use dicomtap_wire::assoc::{
    Abort, AssociateAccept, AssociateReject, AssociateRequest, CommonExtendedNegotiation,
    ContextResult, ExtendedNegotiation, ProposedContext, RoleSelection, UnknownItem,
    UserIdentityRequest, UserInformation,
};
use dicomtap_wire::dimse::{Command, CommandNote, SubOperations};
use dicomtap_wire::event::{
    CommandEvent, DatasetEndEvent, DatasetPeekEvent, PDataSummary, PdvInfo,
};
use dicomtap_wire::peek::{DatasetPeek, InvalidText, PrivateCreator};
use dicomtap_wire::status::Status;
use dicomtap_wire::syntax::Encoding;
use dicomtap_wire::{Event, EventKind, Finding, Severity, Side, StreamEnd};

use crate::server::{ConformanceEvent, Notice, ProxyEventKind, ProxyNotice};

/// An event that has no line of its own.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Data set bytes are for object export only (`#[serde(skip)]` in the engine's
    /// types), never logged.
    #[error("data set fragments are not logged")]
    DataFragment,
}

/// `,"name":`, the separator and key before a field's value, as one constant.
macro_rules! key {
    ($out:expr, $name:literal) => {
        $out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes())
    };
}

/// `{"name":`, an object and its first key.
macro_rules! open {
    ($out:expr, $name:literal) => {
        $out.extend_from_slice(concat!("{\"", $name, "\":").as_bytes())
    };
}

/// The head of a line, `{"assoc":…,"client":…,"upstream":…`, without the closing brace.
pub fn head(out: &mut Vec<u8>, assoc: u64, client: SocketAddr, upstream: Option<SocketAddr>) {
    open!(out, "assoc");
    uint(out, assoc);
    key!(out, "client");
    addr(out, client);
    key!(out, "upstream");
    match upstream {
        Some(a) => addr(out, a),
        None => null(out),
    }
}

/// The fields of an event's kind, each after a comma, and the line's closing brace: what
/// follows [`head`]. On an error nothing is written.
pub fn kind(out: &mut Vec<u8>, kind: &ProxyEventKind) -> Result<(), JsonError> {
    match kind {
        ProxyEventKind::Wire(e) => wire_event(out, e)?,
        ProxyEventKind::Conformance(c) => conformance(out, c),
        ProxyEventKind::Proxy(n) => notice(out, n),
    }
    out.push(b'}');
    Ok(())
}

fn wire_event(out: &mut Vec<u8>, e: &Event) -> Result<(), JsonError> {
    let Event {
        ts_us,
        from,
        offset,
        kind,
    } = e;
    if matches!(kind, EventKind::DataFragment(_)) {
        return Err(JsonError::DataFragment);
    }
    key!(out, "ts_us");
    uint(out, *ts_us);
    key!(out, "from");
    side(out, *from);
    key!(out, "offset");
    uint(out, *offset);
    match kind {
        EventKind::AssociateRq(rq) => {
            key!(out, "event");
            out.extend_from_slice(b"\"associate_rq\"");
            associate_rq(out, rq);
        }
        EventKind::AssociateAc(ac) => {
            key!(out, "event");
            out.extend_from_slice(b"\"associate_ac\"");
            associate_ac(out, ac);
        }
        EventKind::AssociateRj(rj) => {
            let AssociateReject {
                result,
                source,
                reason,
                description,
            } = rj;
            key!(out, "event");
            out.extend_from_slice(b"\"associate_rj\"");
            key!(out, "result");
            uint(out, u64::from(*result));
            key!(out, "source");
            uint(out, u64::from(*source));
            key!(out, "reason");
            uint(out, u64::from(*reason));
            key!(out, "description");
            string(out, description);
        }
        EventKind::ReleaseRq => {
            key!(out, "event");
            out.extend_from_slice(b"\"release_rq\"");
        }
        EventKind::ReleaseRp => {
            key!(out, "event");
            out.extend_from_slice(b"\"release_rp\"");
        }
        EventKind::Abort(a) => {
            let Abort {
                source,
                reason,
                description,
            } = a;
            key!(out, "event");
            out.extend_from_slice(b"\"abort\"");
            key!(out, "source");
            uint(out, u64::from(*source));
            key!(out, "reason");
            uint(out, u64::from(*reason));
            key!(out, "description");
            string(out, description);
        }
        EventKind::PData(p) => {
            let PDataSummary { pdu_length, pdvs } = p;
            key!(out, "event");
            out.extend_from_slice(b"\"p_data\"");
            key!(out, "pdu_length");
            uint(out, u64::from(*pdu_length));
            key!(out, "pdvs");
            list(out, pdvs, |out, pdv| {
                let PdvInfo {
                    pc_id,
                    length,
                    command,
                    last,
                } = pdv;
                open!(out, "pc_id");
                uint(out, u64::from(*pc_id));
                key!(out, "length");
                uint(out, u64::from(*length));
                key!(out, "command");
                boolean(out, *command);
                key!(out, "last");
                boolean(out, *last);
                out.push(b'}');
            });
        }
        EventKind::Command(c) => {
            let CommandEvent {
                pc_id,
                abstract_syntax,
                command,
                latency_us,
            } = c;
            key!(out, "event");
            out.extend_from_slice(b"\"command\"");
            key!(out, "pc_id");
            uint(out, u64::from(*pc_id));
            key!(out, "abstract_syntax");
            opt_str(out, abstract_syntax.as_deref());
            command_fields(out, command);
            key!(out, "latency_us");
            opt_uint(out, *latency_us);
        }
        EventKind::DatasetPeek(p) => {
            let DatasetPeekEvent {
                pc_id,
                transfer_syntax,
                message_id,
                peek,
            } = p;
            key!(out, "event");
            out.extend_from_slice(b"\"dataset_peek\"");
            key!(out, "pc_id");
            uint(out, u64::from(*pc_id));
            key!(out, "transfer_syntax");
            opt_str(out, transfer_syntax.as_deref());
            key!(out, "message_id");
            opt_uint(out, message_id.map(u64::from));
            peek_fields(out, peek);
        }
        EventKind::DatasetEnd(d) => {
            let DatasetEndEvent {
                pc_id,
                message_id,
                length,
            } = d;
            key!(out, "event");
            out.extend_from_slice(b"\"dataset_end\"");
            key!(out, "pc_id");
            uint(out, u64::from(*pc_id));
            key!(out, "message_id");
            opt_uint(out, message_id.map(u64::from));
            key!(out, "length");
            uint(out, *length);
        }
        EventKind::DataFragment(_) => return Err(JsonError::DataFragment),
        EventKind::UnknownPdu { pdu_type, length } => {
            key!(out, "event");
            out.extend_from_slice(b"\"unknown_pdu\"");
            key!(out, "pdu_type");
            uint(out, u64::from(*pdu_type));
            key!(out, "length");
            uint(out, u64::from(*length));
        }
        EventKind::Gap { missing } => {
            key!(out, "event");
            out.extend_from_slice(b"\"gap\"");
            key!(out, "missing");
            uint(out, *missing);
        }
        EventKind::Omitted { bytes } => {
            key!(out, "event");
            out.extend_from_slice(b"\"omitted\"");
            key!(out, "bytes");
            uint(out, *bytes);
        }
        EventKind::Resync { skipped } => {
            key!(out, "event");
            out.extend_from_slice(b"\"resync\"");
            key!(out, "skipped");
            uint(out, *skipped);
        }
        EventKind::StreamEnd { how } => {
            key!(out, "event");
            out.extend_from_slice(b"\"stream_end\"");
            key!(out, "how");
            out.extend_from_slice(match how {
                StreamEnd::Close => b"\"close\"",
                StreamEnd::Reset => b"\"reset\"",
            });
        }
        EventKind::Finding(f) => {
            let Finding {
                code,
                severity: sev,
                message,
            } = f;
            key!(out, "event");
            out.extend_from_slice(b"\"finding\"");
            key!(out, "code");
            quoted(out, code.id());
            key!(out, "severity");
            severity(out, *sev);
            key!(out, "message");
            string(out, message);
        }
    }
    Ok(())
}

fn associate_rq(out: &mut Vec<u8>, rq: &AssociateRequest) {
    let AssociateRequest {
        protocol_version,
        called_ae,
        calling_ae,
        application_context,
        contexts,
        user_info,
        unknown,
    } = rq;
    key!(out, "protocol_version");
    uint(out, u64::from(*protocol_version));
    key!(out, "called_ae");
    string(out, called_ae);
    key!(out, "calling_ae");
    string(out, calling_ae);
    key!(out, "application_context");
    opt_str(out, application_context.as_deref());
    key!(out, "contexts");
    list(out, contexts, |out, pc| {
        let ProposedContext {
            id,
            abstract_syntax,
            transfer_syntaxes,
        } = pc;
        open!(out, "id");
        uint(out, u64::from(*id));
        key!(out, "abstract_syntax");
        string(out, abstract_syntax);
        key!(out, "transfer_syntaxes");
        strings(out, transfer_syntaxes);
        out.push(b'}');
    });
    key!(out, "user_info");
    user_information(out, user_info);
    key!(out, "unknown");
    unknown_items(out, unknown);
}

fn associate_ac(out: &mut Vec<u8>, ac: &AssociateAccept) {
    let AssociateAccept {
        protocol_version,
        called_ae,
        calling_ae,
        application_context,
        results,
        user_info,
        unknown,
    } = ac;
    key!(out, "protocol_version");
    uint(out, u64::from(*protocol_version));
    key!(out, "called_ae");
    string(out, called_ae);
    key!(out, "calling_ae");
    string(out, calling_ae);
    key!(out, "application_context");
    opt_str(out, application_context.as_deref());
    key!(out, "results");
    list(out, results, |out, r| {
        let ContextResult {
            id,
            result,
            result_name,
            transfer_syntax,
        } = r;
        open!(out, "id");
        uint(out, u64::from(*id));
        key!(out, "result");
        uint(out, u64::from(*result));
        key!(out, "result_name");
        string(out, result_name);
        key!(out, "transfer_syntax");
        opt_str(out, transfer_syntax.as_deref());
        out.push(b'}');
    });
    key!(out, "user_info");
    user_information(out, user_info);
    key!(out, "unknown");
    unknown_items(out, unknown);
}

fn user_information(out: &mut Vec<u8>, ui: &UserInformation) {
    let UserInformation {
        max_length,
        implementation_class_uid,
        implementation_version_name,
        async_window,
        role_selections,
        extended_negotiation,
        common_extended_negotiation,
        user_identity,
        user_identity_response_length,
        unknown,
    } = ui;
    open!(out, "max_length");
    opt_uint(out, max_length.map(u64::from));
    key!(out, "implementation_class_uid");
    opt_str(out, implementation_class_uid.as_deref());
    key!(out, "implementation_version_name");
    opt_str(out, implementation_version_name.as_deref());
    key!(out, "async_window");
    match async_window {
        Some((invoked, performed)) => {
            out.push(b'[');
            uint(out, u64::from(*invoked));
            out.push(b',');
            uint(out, u64::from(*performed));
            out.push(b']');
        }
        None => null(out),
    }
    key!(out, "role_selections");
    list(out, role_selections, |out, r| {
        let RoleSelection {
            sop_class,
            scu,
            scp,
        } = r;
        open!(out, "sop_class");
        string(out, sop_class);
        key!(out, "scu");
        boolean(out, *scu);
        key!(out, "scp");
        boolean(out, *scp);
        out.push(b'}');
    });
    key!(out, "extended_negotiation");
    list(out, extended_negotiation, |out, x| {
        let ExtendedNegotiation { sop_class, info } = x;
        open!(out, "sop_class");
        string(out, sop_class);
        key!(out, "info");
        string(out, info);
        out.push(b'}');
    });
    key!(out, "common_extended_negotiation");
    list(out, common_extended_negotiation, |out, x| {
        let CommonExtendedNegotiation {
            sop_class,
            service_class,
            related_general_sop_classes,
        } = x;
        open!(out, "sop_class");
        string(out, sop_class);
        key!(out, "service_class");
        string(out, service_class);
        key!(out, "related_general_sop_classes");
        strings(out, related_general_sop_classes);
        out.push(b'}');
    });
    key!(out, "user_identity");
    match user_identity {
        Some(u) => {
            let UserIdentityRequest {
                identity_type,
                identity_type_name,
                positive_response_requested,
                username,
                primary_field_length,
                secondary_field_length,
            } = u;
            open!(out, "identity_type");
            uint(out, u64::from(*identity_type));
            key!(out, "identity_type_name");
            string(out, identity_type_name);
            key!(out, "positive_response_requested");
            boolean(out, *positive_response_requested);
            key!(out, "username");
            opt_str(out, username.as_deref());
            key!(out, "primary_field_length");
            uint(out, u64::from(*primary_field_length));
            key!(out, "secondary_field_length");
            uint(out, u64::from(*secondary_field_length));
            out.push(b'}');
        }
        None => null(out),
    }
    key!(out, "user_identity_response_length");
    opt_uint(out, user_identity_response_length.map(u64::from));
    key!(out, "unknown");
    unknown_items(out, unknown);
    out.push(b'}');
}

fn unknown_items(out: &mut Vec<u8>, items: &[UnknownItem]) {
    list(out, items, |out, u| {
        let UnknownItem {
            item_type,
            length,
            offset,
        } = u;
        open!(out, "item_type");
        uint(out, u64::from(*item_type));
        key!(out, "length");
        uint(out, u64::from(*length));
        key!(out, "offset");
        uint(out, *offset);
        out.push(b'}');
    });
}

/// A command set's fields, flattened into its event.
fn command_fields(out: &mut Vec<u8>, c: &Command) {
    let Command {
        command_field,
        command,
        message_id,
        responded_to,
        affected_sop_class,
        requested_sop_class,
        affected_sop_instance,
        requested_sop_instance,
        priority,
        has_dataset,
        status: st,
        error_comment,
        error_id,
        offending_elements,
        sub_operations,
        move_destination,
        move_originator_ae,
        move_originator_message_id,
        event_type_id,
        action_type_id,
        group_length,
        data_set_type,
        attribute_identifiers,
        notes,
    } = c;
    key!(out, "command_field");
    uint(out, u64::from(*command_field));
    key!(out, "command");
    string(out, command);
    key!(out, "message_id");
    opt_uint(out, message_id.map(u64::from));
    key!(out, "responded_to");
    opt_uint(out, responded_to.map(u64::from));
    key!(out, "affected_sop_class");
    opt_str(out, affected_sop_class.as_deref());
    key!(out, "requested_sop_class");
    opt_str(out, requested_sop_class.as_deref());
    key!(out, "affected_sop_instance");
    opt_str(out, affected_sop_instance.as_deref());
    key!(out, "requested_sop_instance");
    opt_str(out, requested_sop_instance.as_deref());
    key!(out, "priority");
    opt_uint(out, priority.map(u64::from));
    key!(out, "has_dataset");
    boolean(out, *has_dataset);
    key!(out, "status");
    match st {
        Some(s) => status(out, s),
        None => null(out),
    }
    key!(out, "error_comment");
    opt_str(out, error_comment.as_deref());
    key!(out, "error_id");
    opt_uint(out, error_id.map(u64::from));
    key!(out, "offending_elements");
    strings(out, offending_elements);
    key!(out, "sub_operations");
    match sub_operations {
        Some(s) => {
            let SubOperations {
                remaining,
                completed,
                failed,
                warning,
            } = s;
            open!(out, "remaining");
            opt_uint(out, remaining.map(u64::from));
            key!(out, "completed");
            opt_uint(out, completed.map(u64::from));
            key!(out, "failed");
            opt_uint(out, failed.map(u64::from));
            key!(out, "warning");
            opt_uint(out, warning.map(u64::from));
            out.push(b'}');
        }
        None => null(out),
    }
    key!(out, "move_destination");
    opt_str(out, move_destination.as_deref());
    key!(out, "move_originator_ae");
    opt_str(out, move_originator_ae.as_deref());
    key!(out, "move_originator_message_id");
    opt_uint(out, move_originator_message_id.map(u64::from));
    key!(out, "event_type_id");
    opt_uint(out, event_type_id.map(u64::from));
    key!(out, "action_type_id");
    opt_uint(out, action_type_id.map(u64::from));
    key!(out, "group_length");
    opt_uint(out, group_length.map(u64::from));
    key!(out, "data_set_type");
    opt_uint(out, data_set_type.map(u64::from));
    key!(out, "attribute_identifiers");
    strings(out, attribute_identifiers);
    // `skip_serializing_if = "Vec::is_empty"`.
    if !notes.is_empty() {
        key!(out, "notes");
        list(out, notes, command_note);
    }
}

fn status(out: &mut Vec<u8>, s: &Status) {
    let Status {
        code,
        value,
        class,
        meaning,
        known,
    } = s;
    open!(out, "code");
    string(out, code);
    key!(out, "value");
    uint(out, u64::from(*value));
    key!(out, "class");
    quoted(out, class.as_str());
    key!(out, "meaning");
    string(out, meaning);
    key!(out, "known");
    boolean(out, *known);
    out.push(b'}');
}

fn command_note(out: &mut Vec<u8>, n: &CommandNote) {
    // `#[serde(tag = "note")]`: the variant's name, then its fields.
    let tag_offset = |out: &mut Vec<u8>, name: &[u8], tag: &str, offset: usize| {
        out.extend_from_slice(b"{\"note\":");
        out.extend_from_slice(name);
        key!(out, "tag");
        string(out, tag);
        key!(out, "offset");
        uint(out, offset as u64);
    };
    match n {
        CommandNote::NoGroupLength => out.extend_from_slice(b"{\"note\":\"no_group_length\""),
        CommandNote::GroupLengthMismatch { declared, actual } => {
            out.extend_from_slice(b"{\"note\":\"group_length_mismatch\"");
            key!(out, "declared");
            uint(out, u64::from(*declared));
            key!(out, "actual");
            uint(out, *actual);
        }
        CommandNote::UnknownElement { tag, offset } => {
            tag_offset(out, b"\"unknown_element\"", tag, *offset)
        }
        CommandNote::OutOfOrder { tag, offset } => {
            tag_offset(out, b"\"out_of_order\"", tag, *offset)
        }
        CommandNote::Duplicate { tag, offset } => tag_offset(out, b"\"duplicate\"", tag, *offset),
        CommandNote::BadLength {
            tag,
            offset,
            length,
        } => {
            tag_offset(out, b"\"bad_length\"", tag, *offset);
            key!(out, "length");
            uint(out, u64::from(*length));
        }
        CommandNote::UidPadding { tag, offset, value } => {
            tag_offset(out, b"\"uid_padding\"", tag, *offset);
            key!(out, "value");
            string(out, value);
        }
        CommandNote::InvalidUid { tag, offset, value } => {
            tag_offset(out, b"\"invalid_uid\"", tag, *offset);
            key!(out, "value");
            string(out, value);
        }
        CommandNote::Missing { tag } => {
            out.extend_from_slice(b"{\"note\":\"missing\"");
            key!(out, "tag");
            string(out, tag);
        }
    }
    out.push(b'}');
}

/// A data set peek's fields, flattened into its event.
fn peek_fields(out: &mut Vec<u8>, p: &DatasetPeek) {
    let DatasetPeek {
        sop_class_uid,
        sop_instance_uid,
        study_instance_uid,
        series_instance_uid,
        modality,
        specific_character_set,
        unchecked_character_sets,
        invalid_text,
        private_creators,
        examined,
        truncated,
        error,
        encoding_found,
    } = p;
    key!(out, "sop_class_uid");
    opt_str(out, sop_class_uid.as_deref());
    key!(out, "sop_instance_uid");
    opt_str(out, sop_instance_uid.as_deref());
    key!(out, "study_instance_uid");
    opt_str(out, study_instance_uid.as_deref());
    key!(out, "series_instance_uid");
    opt_str(out, series_instance_uid.as_deref());
    key!(out, "modality");
    opt_str(out, modality.as_deref());
    key!(out, "specific_character_set");
    strings(out, specific_character_set);
    key!(out, "unchecked_character_sets");
    strings(out, unchecked_character_sets);
    key!(out, "invalid_text");
    list(out, invalid_text, |out, t| {
        let InvalidText {
            tag,
            vr,
            byte_offset,
            reason,
        } = t;
        open!(out, "tag");
        string(out, tag);
        key!(out, "vr");
        string(out, vr);
        key!(out, "byte_offset");
        uint(out, *byte_offset as u64);
        key!(out, "reason");
        string(out, reason);
        out.push(b'}');
    });
    key!(out, "private_creators");
    list(out, private_creators, |out, c| {
        let PrivateCreator {
            group,
            block,
            creator,
            in_sequence,
        } = c;
        open!(out, "group");
        uint(out, u64::from(*group));
        key!(out, "block");
        uint(out, u64::from(*block));
        key!(out, "creator");
        string(out, creator);
        key!(out, "in_sequence");
        boolean(out, *in_sequence);
        out.push(b'}');
    });
    key!(out, "examined");
    uint(out, *examined as u64);
    key!(out, "truncated");
    boolean(out, *truncated);
    key!(out, "error");
    opt_str(out, error.as_deref());
    key!(out, "encoding_found");
    match encoding_found {
        Some(e) => quoted(out, encoding(*e)),
        None => null(out),
    }
}

/// The serde (`snake_case`) name of an encoding.
fn encoding(e: Encoding) -> &'static str {
    match e {
        Encoding::ImplicitVrLittleEndian => "implicit_vr_little_endian",
        Encoding::ExplicitVrLittleEndian => "explicit_vr_little_endian",
        Encoding::ExplicitVrBigEndian => "explicit_vr_big_endian",
        Encoding::DeflatedExplicitVrLittleEndian => "deflated_explicit_vr_little_endian",
        Encoding::Encapsulated => "encapsulated",
        Encoding::Unknown => "unknown",
    }
}

fn notice(out: &mut Vec<u8>, n: &ProxyNotice) {
    let ProxyNotice { ts_us, what } = n;
    key!(out, "ts_us");
    uint(out, *ts_us);
    key!(out, "event");
    match what {
        Notice::Accepted { listen } => {
            out.extend_from_slice(b"\"accepted\"");
            key!(out, "listen");
            addr(out, *listen);
        }
        Notice::UpstreamConnected { local } => {
            out.extend_from_slice(b"\"upstream_connected\"");
            key!(out, "local");
            addr(out, *local);
        }
        Notice::UpstreamError { kind, message } => {
            out.extend_from_slice(b"\"upstream_error\"");
            key!(out, "kind");
            string(out, kind);
            key!(out, "message");
            string(out, message);
        }
        Notice::ProxyReject {
            result,
            source,
            reason,
            why,
        } => {
            out.extend_from_slice(b"\"proxy_reject\"");
            key!(out, "result");
            uint(out, u64::from(*result));
            key!(out, "source");
            uint(out, u64::from(*source));
            key!(out, "reason");
            uint(out, u64::from(*reason));
            key!(out, "why");
            string(out, why);
        }
        Notice::ProxyAbort { to, why } => {
            out.extend_from_slice(b"\"proxy_abort\"");
            key!(out, "to");
            side(out, *to);
            key!(out, "why");
            string(out, why);
        }
        Notice::TlsEstablished {
            leg,
            version,
            cipher_suite,
            server_name,
            peer_subject,
            peer_issuer,
            peer_fingerprint_sha256,
        } => {
            out.extend_from_slice(b"\"tls_established\"");
            key!(out, "leg");
            string(out, leg);
            key!(out, "version");
            string(out, version);
            key!(out, "cipher_suite");
            string(out, cipher_suite);
            key!(out, "server_name");
            opt_str(out, server_name.as_deref());
            key!(out, "peer_subject");
            opt_str(out, peer_subject.as_deref());
            key!(out, "peer_issuer");
            opt_str(out, peer_issuer.as_deref());
            key!(out, "peer_fingerprint_sha256");
            opt_str(out, peer_fingerprint_sha256.as_deref());
        }
        Notice::TlsHandshakeFailed {
            leg,
            result,
            reason,
        } => {
            out.extend_from_slice(b"\"tls_handshake_failed\"");
            key!(out, "leg");
            string(out, leg);
            key!(out, "result");
            string(out, result);
            key!(out, "reason");
            string(out, reason);
        }
        Notice::AccessDenied { rule, detail } => {
            out.extend_from_slice(b"\"access_denied\"");
            key!(out, "rule");
            string(out, rule);
            key!(out, "detail");
            string(out, detail);
        }
        Notice::EventsSuppressed(s) => {
            // The type lives in a private module of the server: its fields are named
            // one by one (debug builds and the tests compare the line with serde_json's).
            out.extend_from_slice(b"\"events_suppressed\"");
            key!(out, "findings");
            out.push(b'{');
            for (i, (kind, n)) in s.findings.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, kind);
                out.push(b':');
                uint(out, *n);
            }
            out.push(b'}');
            key!(out, "small_p_data");
            uint(out, s.small_p_data);
            key!(out, "small_p_data_bytes");
            uint(out, s.small_p_data_bytes);
            key!(out, "over_budget");
            uint(out, s.over_budget);
            key!(out, "contexts_not_logged");
            uint(out, s.contexts_not_logged);
            key!(out, "pdvs_not_logged");
            uint(out, s.pdvs_not_logged);
            key!(out, "lines_logged");
            uint(out, s.lines_logged);
        }
        Notice::Closed {
            bytes_from_requestor,
            bytes_from_acceptor,
            duration_us,
            how,
        } => {
            out.extend_from_slice(b"\"closed\"");
            key!(out, "bytes_from_requestor");
            uint(out, *bytes_from_requestor);
            key!(out, "bytes_from_acceptor");
            uint(out, *bytes_from_acceptor);
            key!(out, "duration_us");
            uint(out, *duration_us);
            key!(out, "how");
            string(out, how);
        }
    }
}

fn conformance(out: &mut Vec<u8>, c: &ConformanceEvent) {
    let ConformanceEvent {
        ts_us,
        event,
        finding,
    } = c;
    let ConformanceFinding {
        rule,
        severity: sev,
        device,
        ae,
        claim,
        observed,
        evidence,
    } = finding;
    key!(out, "ts_us");
    uint(out, *ts_us);
    key!(out, "event");
    string(out, event);
    key!(out, "rule");
    quoted(out, rule.as_str());
    key!(out, "severity");
    severity(out, *sev);
    key!(out, "device");
    string(out, device);
    key!(out, "ae");
    string(out, ae);
    key!(out, "claim");
    string(out, claim);
    key!(out, "observed");
    string(out, observed);
    key!(out, "evidence");
    let Evidence {
        source,
        association,
        client,
        server,
        from,
        offset,
        message_id,
        sop_instance,
        ts_us,
        related,
    } = evidence;
    // Every `Option` here is `skip_serializing_if = "Option::is_none"`, so the first
    // field written is `source` or `association`.
    out.push(b'{');
    if let Some(s) = source {
        out.extend_from_slice(b"\"source\":");
        string(out, s);
        out.push(b',');
    }
    out.extend_from_slice(b"\"association\":");
    uint(out, *association);
    if let Some(a) = client {
        key!(out, "client");
        addr(out, *a);
    }
    if let Some(a) = server {
        key!(out, "server");
        addr(out, *a);
    }
    if let Some(f) = from {
        key!(out, "from");
        side(out, *f);
    }
    if let Some(o) = offset {
        key!(out, "offset");
        uint(out, *o);
    }
    if let Some(m) = message_id {
        key!(out, "message_id");
        uint(out, u64::from(*m));
    }
    if let Some(s) = sop_instance {
        key!(out, "sop_instance");
        string(out, s);
    }
    key!(out, "ts_us");
    uint(out, *ts_us);
    if !related.is_empty() {
        key!(out, "related");
        list(out, related, |out, r| {
            let Related {
                what,
                association,
                message_id,
                ts_us,
            } = r;
            open!(out, "what");
            string(out, what);
            key!(out, "association");
            uint(out, *association);
            if let Some(m) = message_id {
                key!(out, "message_id");
                uint(out, u64::from(*m));
            }
            key!(out, "ts_us");
            uint(out, *ts_us);
            out.push(b'}');
        });
    }
    out.push(b'}');
}

fn side(out: &mut Vec<u8>, s: Side) {
    out.extend_from_slice(match s {
        Side::Requestor => b"\"requestor\"",
        Side::Acceptor => b"\"acceptor\"",
    });
}

fn severity(out: &mut Vec<u8>, s: Severity) {
    out.extend_from_slice(match s {
        Severity::Info => b"\"info\"" as &[u8],
        Severity::Warning => b"\"warning\"",
        Severity::Error => b"\"error\"",
    });
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A name known to need no escaping (a serde variant name or id), in quotes.
fn quoted(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.bytes().all(|b| ESCAPE[usize::from(b)] == 0), "{s:?}");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => null(out),
    }
}

fn opt_uint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => uint(out, v),
        None => null(out),
    }
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    list(out, items, |out, s| string(out, s));
}

fn list<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

/// A socket address as serde writes it for a human-readable format: its `Display`, as a
/// string (digits, dots, colons, brackets and a `%` scope: nothing to escape).
fn addr(out: &mut Vec<u8>, a: SocketAddr) {
    let mut text = AddrText::default();
    // Writing to a fixed buffer large enough for any socket address cannot fail.
    let _ = write!(text, "{a}");
    string(out, text.as_str());
}

/// Room for the longest `SocketAddr` text (`[v6%scope]:port`, 58 bytes).
struct AddrText {
    buf: [u8; 64],
    len: usize,
}

impl Default for AddrText {
    fn default() -> Self {
        AddrText {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl AddrText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// An unsigned integer in decimal, two digits at a time (what `itoa`, serde_json's
/// formatter, writes).
fn uint(out: &mut Vec<u8>, mut v: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[at..]);
}

/// What serde_json writes for each byte of a string: 0 the byte itself, `u` a `\u00XX`
/// escape, anything else a backslash and that character.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string as serde_json writes it: quotes, backslashes and control characters
/// escaped (the short forms where JSON has them, else `\u00xx` in lower-case hex),
/// everything else, non-ASCII included, as it is. Runs between escapes are copied whole.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[usize::from(b)];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests;
