//! The six enums of `limiquantix.agent.v1` (values exactly as in the agent's `agent.proto`), and
//! [`ProtoEnum`], which gives each its proto value names for JSON and summaries.
//!
//! On the wire an enum field is a plain `int32`; a peer may send a value this version does not
//! know, so message fields keep the raw `i32` (as prost does) and these types only name it.

/// A protobuf enum with its proto value names (`SHUTDOWN_TYPE_REBOOT`, …).
pub trait ProtoEnum: Copy + TryFrom<i32> + Into<i32> {
    /// The prefix every value name of this enum shares, e.g. `SHUTDOWN_TYPE_`.
    const PREFIX: &'static str;

    /// The value's proto name, e.g. `SHUTDOWN_TYPE_REBOOT`.
    fn proto_name(self) -> &'static str;

    /// The value with the given proto name, if there is one.
    fn from_proto_name(name: &str) -> Option<Self>;

    /// The proto name of a raw wire value, or `None` when this version does not know it.
    fn name_of(value: i32) -> Option<&'static str> {
        Self::try_from(value).ok().map(Self::proto_name)
    }

    /// A short label for summaries: the name without its prefix (`REBOOT`), or the number.
    fn label(value: i32) -> String {
        match Self::name_of(value) {
            Some(name) => name.strip_prefix(Self::PREFIX).unwrap_or(name).to_string(),
            None => value.to_string(),
        }
    }
}

macro_rules! proto_enum {
    (
        $(#[$doc:meta])*
        $name:ident, prefix $prefix:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $value:literal => $pname:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $value, )+
        }

        impl ProtoEnum for $name {
            const PREFIX: &'static str = $prefix;

            fn proto_name(self) -> &'static str {
                match self {
                    $( Self::$variant => $pname, )+
                }
            }

            fn from_proto_name(name: &str) -> Option<Self> {
                match name {
                    $( $pname => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }
    };
}

proto_enum! {
    /// How the guest should go down (`ShutdownRequest.type`).
    ShutdownType, prefix "SHUTDOWN_TYPE_" {
        /// Power the machine off.
        Poweroff = 0 => "SHUTDOWN_TYPE_POWEROFF",
        /// Reboot.
        Reboot = 1 => "SHUTDOWN_TYPE_REBOOT",
        /// Halt without powering off.
        Halt = 2 => "SHUTDOWN_TYPE_HALT",
    }
}

proto_enum! {
    /// Link state of a guest network interface (`InterfaceInfo.state`).
    InterfaceState, prefix "INTERFACE_STATE_" {
        /// Not known.
        Unknown = 0 => "INTERFACE_STATE_UNKNOWN",
        /// Up.
        Up = 1 => "INTERFACE_STATE_UP",
        /// Down.
        Down = 2 => "INTERFACE_STATE_DOWN",
    }
}

proto_enum! {
    /// Severity of an unsolicited `ErrorEvent`.
    ErrorSeverity, prefix "ERROR_SEVERITY_" {
        /// A warning.
        Warning = 0 => "ERROR_SEVERITY_WARNING",
        /// An error.
        Error = 1 => "ERROR_SEVERITY_ERROR",
        /// A critical error.
        Critical = 2 => "ERROR_SEVERITY_CRITICAL",
    }
}

proto_enum! {
    /// Kind of clipboard content.
    ClipboardType, prefix "CLIPBOARD_TYPE_" {
        /// Plain text.
        Text = 0 => "CLIPBOARD_TYPE_TEXT",
        /// An image.
        Image = 1 => "CLIPBOARD_TYPE_IMAGE",
        /// A list of files.
        Files = 2 => "CLIPBOARD_TYPE_FILES",
        /// HTML.
        Html = 3 => "CLIPBOARD_TYPE_HTML",
    }
}

proto_enum! {
    /// What to do to a guest service (`ServiceControlRequest.action`).
    ServiceAction, prefix "SERVICE_ACTION_" {
        /// Start it.
        Start = 0 => "SERVICE_ACTION_START",
        /// Stop it.
        Stop = 1 => "SERVICE_ACTION_STOP",
        /// Restart it.
        Restart = 2 => "SERVICE_ACTION_RESTART",
        /// Enable it at boot.
        Enable = 3 => "SERVICE_ACTION_ENABLE",
        /// Disable it at boot.
        Disable = 4 => "SERVICE_ACTION_DISABLE",
        /// Only report its status.
        Status = 5 => "SERVICE_ACTION_STATUS",
    }
}

proto_enum! {
    /// Progress of an agent self-update (`AgentUpdateResponse.state`).
    UpdateState, prefix "UPDATE_STATE_" {
        /// Nothing under way.
        Idle = 0 => "UPDATE_STATE_IDLE",
        /// Receiving the binary.
        Downloading = 1 => "UPDATE_STATE_DOWNLOADING",
        /// Checking the checksum.
        Verifying = 2 => "UPDATE_STATE_VERIFYING",
        /// Installing.
        Applying = 3 => "UPDATE_STATE_APPLYING",
        /// Done.
        Complete = 4 => "UPDATE_STATE_COMPLETE",
        /// Failed.
        Failed = 5 => "UPDATE_STATE_FAILED",
        /// Going back to the previous binary.
        RollingBack = 6 => "UPDATE_STATE_ROLLING_BACK",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_match_the_proto() {
        assert_eq!(ShutdownType::Reboot as i32, 1);
        assert_eq!(ShutdownType::name_of(2), Some("SHUTDOWN_TYPE_HALT"));
        assert_eq!(InterfaceState::Down as i32, 2);
        assert_eq!(ErrorSeverity::Critical as i32, 2);
        assert_eq!(ClipboardType::Html as i32, 3);
        assert_eq!(ServiceAction::Status as i32, 5);
        assert_eq!(UpdateState::RollingBack as i32, 6);
        assert_eq!(
            UpdateState::from_proto_name("UPDATE_STATE_VERIFYING"),
            Some(UpdateState::Verifying)
        );
        assert_eq!(ServiceAction::from_proto_name("RESTART"), None);
        assert_eq!(ShutdownType::label(1), "REBOOT");
        assert_eq!(ShutdownType::label(42), "42");
    }
}
