//! Audio (macOS 12): `VZVirtioSoundDeviceConfiguration`, its input and output streams
//! (`VZVirtioSoundDeviceInputStreamConfiguration`,
//! `VZVirtioSoundDeviceOutputStreamConfiguration`), and the host's default audio
//! devices as a stream's source or sink (`VZHostAudioInputStreamSource`,
//! `VZHostAudioOutputStreamSink`).
//!
//! A Linux guest needs a kernel with `CONFIG_SND_VIRTIO` to see the device.
//!
//! # The microphone permission
//!
//! Recording from the host ([`HostAudioInputStreamSource`]) is subject to the
//! microphone permission of macOS (TCC): the app must have an
//! `NSMicrophoneUsageDescription` string in its `Info.plist`, or macOS denies access
//! and the guest records silence. An app with the hardened runtime must also be signed
//! with the `com.apple.security.device.audio-input` entitlement. Playing to the host
//! ([`HostAudioOutputStreamSink`]) needs no permission.
//!
//! Apple's documentation: <https://developer.apple.com/documentation/virtualization/audio>

use crate::configuration::{AsObject, class_since, object_array};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn audio_init(object: Allocated) -> Option<Id> = "init";
    fn set_streams_raw(device: &Id, streams: &Id) = "setStreams:";
    fn set_source_raw(stream: &Id, source: Option<&Id>) = "setSource:";
    fn set_sink_raw(stream: &Id, sink: Option<&Id>) = "setSink:";
}

const FEATURE: &str = "audio devices";
const SINCE: &str = "12.0";

/// `alloc` + `init` of a macOS 12 audio class.
fn new_object(
    class: Result<crate::ffi::runtime::ClassRef, VZError>,
    name: &'static str,
) -> Result<Id, VZError> {
    let class = class_since(class, FEATURE, SINCE)?;
    in_pool!(audio_init(class.alloc())).ok_or(VZError::ClassNotFound { class: name })
}

/// `VZHostAudioInputStreamSource` (macOS 12): records from the host's default input
/// device (it follows the host's Sound settings). Set it on a
/// [`VirtioSoundDeviceInputStreamConfiguration`].
///
/// # The microphone permission
///
/// Recording from the host is subject to the microphone permission of macOS (TCC):
/// the app must have an `NSMicrophoneUsageDescription` string in its `Info.plist`, or
/// macOS denies access and the guest records silence. An app with the hardened
/// runtime must also be signed with the `com.apple.security.device.audio-input`
/// entitlement. Playing to the host ([`HostAudioOutputStreamSink`]) needs neither.
#[derive(Clone, Debug)]
pub struct HostAudioInputStreamSource {
    obj: Id,
}

impl HostAudioInputStreamSource {
    /// The host's default input device (`init`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class!("VZHostAudioInputStreamSource");
        Ok(Self {
            obj: new_object(class, "VZHostAudioInputStreamSource")?,
        })
    }
}

/// `VZHostAudioOutputStreamSink` (macOS 12): plays to the host's default output
/// device. Set it on a [`VirtioSoundDeviceOutputStreamConfiguration`]. No permission
/// is needed.
#[derive(Clone, Debug)]
pub struct HostAudioOutputStreamSink {
    obj: Id,
}

impl HostAudioOutputStreamSink {
    /// The host's default output device (`init`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class!("VZHostAudioOutputStreamSink");
        Ok(Self {
            obj: new_object(class, "VZHostAudioOutputStreamSink")?,
        })
    }
}

/// `VZVirtioSoundDeviceInputStreamConfiguration` (macOS 12): a capture stream, audio
/// from the host to the guest (a microphone).
///
/// Without a source (the default) the stream is still valid: the guest records
/// silence.
#[derive(Debug)]
pub struct VirtioSoundDeviceInputStreamConfiguration {
    obj: Id,
    source: Option<HostAudioInputStreamSource>,
}

impl VirtioSoundDeviceInputStreamConfiguration {
    /// An input stream without a source (`init`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class!("VZVirtioSoundDeviceInputStreamConfiguration");
        Ok(Self {
            obj: new_object(class, "VZVirtioSoundDeviceInputStreamConfiguration")?,
            source: None,
        })
    }

    /// Records from `source` (`setSource:`), replacing any previous source. See
    /// [`HostAudioInputStreamSource`] for the microphone permission.
    pub fn set_source(&mut self, source: HostAudioInputStreamSource) -> &mut Self {
        in_pool!(set_source_raw(&self.obj, Some(&source.obj)));
        self.source = Some(source);
        self
    }

    /// Removes the source (`setSource:` with nil): the guest records silence.
    pub fn clear_source(&mut self) -> &mut Self {
        in_pool!(set_source_raw(&self.obj, None));
        self.source = None;
        self
    }

    /// The source, if one was set.
    pub fn source(&self) -> Option<&HostAudioInputStreamSource> {
        self.source.as_ref()
    }
}

/// `VZVirtioSoundDeviceOutputStreamConfiguration` (macOS 12): a playback stream, audio
/// from the guest to the host (speakers).
///
/// Without a sink (the default) the stream is still valid: the guest's audio is
/// dropped.
#[derive(Debug)]
pub struct VirtioSoundDeviceOutputStreamConfiguration {
    obj: Id,
    sink: Option<HostAudioOutputStreamSink>,
}

impl VirtioSoundDeviceOutputStreamConfiguration {
    /// An output stream without a sink (`init`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class!("VZVirtioSoundDeviceOutputStreamConfiguration");
        Ok(Self {
            obj: new_object(class, "VZVirtioSoundDeviceOutputStreamConfiguration")?,
            sink: None,
        })
    }

    /// Plays to `sink` (`setSink:`), replacing any previous sink.
    pub fn set_sink(&mut self, sink: HostAudioOutputStreamSink) -> &mut Self {
        in_pool!(set_sink_raw(&self.obj, Some(&sink.obj)));
        self.sink = Some(sink);
        self
    }

    /// Removes the sink (`setSink:` with nil): the guest's audio is dropped.
    pub fn clear_sink(&mut self) -> &mut Self {
        in_pool!(set_sink_raw(&self.obj, None));
        self.sink = None;
        self
    }

    /// The sink, if one was set.
    pub fn sink(&self) -> Option<&HostAudioOutputStreamSink> {
        self.sink.as_ref()
    }
}

/// One stream of a [`VirtioSoundDeviceConfiguration`]
/// (`VZVirtioSoundDeviceStreamConfiguration`): input (capture) or output (playback).
#[derive(Debug)]
pub enum VirtioSoundDeviceStreamConfiguration {
    /// A capture stream, host to guest.
    Input(VirtioSoundDeviceInputStreamConfiguration),
    /// A playback stream, guest to host.
    Output(VirtioSoundDeviceOutputStreamConfiguration),
}

impl AsObject for VirtioSoundDeviceStreamConfiguration {
    fn as_object(&self) -> &Id {
        match self {
            Self::Input(stream) => &stream.obj,
            Self::Output(stream) => &stream.obj,
        }
    }
}

impl From<VirtioSoundDeviceInputStreamConfiguration> for VirtioSoundDeviceStreamConfiguration {
    fn from(stream: VirtioSoundDeviceInputStreamConfiguration) -> Self {
        Self::Input(stream)
    }
}

impl From<VirtioSoundDeviceOutputStreamConfiguration> for VirtioSoundDeviceStreamConfiguration {
    fn from(stream: VirtioSoundDeviceOutputStreamConfiguration) -> Self {
        Self::Output(stream)
    }
}

/// `VZVirtioSoundDeviceConfiguration` (macOS 12): a virtio-snd device with one or more
/// streams. Add it with
/// [`VirtualMachineConfiguration::set_audio_devices`](crate::VirtualMachineConfiguration::set_audio_devices).
///
/// One device may carry both an input and an output stream; Apple's Linux sample
/// instead adds two devices, one per direction. Both work.
///
/// Recording from the host needs the microphone permission: see
/// [`HostAudioInputStreamSource`].
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{
///     HostAudioInputStreamSource, HostAudioOutputStreamSink, VirtioSoundDeviceConfiguration,
///     VirtioSoundDeviceInputStreamConfiguration, VirtioSoundDeviceOutputStreamConfiguration,
///     VirtualMachineConfiguration,
/// };
///
/// let mut input = VirtioSoundDeviceInputStreamConfiguration::new()?;
/// input.set_source(HostAudioInputStreamSource::new()?);
/// let mut output = VirtioSoundDeviceOutputStreamConfiguration::new()?;
/// output.set_sink(HostAudioOutputStreamSink::new()?);
/// let sound = VirtioSoundDeviceConfiguration::new(vec![input.into(), output.into()])?;
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_audio_devices(vec![sound]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioSoundDeviceConfiguration {
    obj: Id,
    streams: Vec<VirtioSoundDeviceStreamConfiguration>,
}

impl AsObject for VirtioSoundDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

/// A device without streams is useless, so an empty list is refused.
fn check_streams(streams: &[VirtioSoundDeviceStreamConfiguration]) -> Result<(), VZError> {
    if streams.is_empty() {
        return Err(VZError::invalid_argument(
            "audio streams",
            "the list is empty; a sound device needs at least one input or output stream",
        ));
    }
    Ok(())
}

impl VirtioSoundDeviceConfiguration {
    /// A sound device with `streams` (`init`, then `setStreams:`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12 (whatever `streams` holds);
    /// [`VZError::InvalidArgument`] (`"audio streams"`) when `streams` is empty.
    pub fn new(streams: Vec<VirtioSoundDeviceStreamConfiguration>) -> Result<Self, VZError> {
        let class = class_since(class!("VZVirtioSoundDeviceConfiguration"), FEATURE, SINCE)?;
        check_streams(&streams)?;
        let obj = in_pool!(audio_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZVirtioSoundDeviceConfiguration",
        })?;
        let mut device = Self {
            obj,
            streams: Vec::new(),
        };
        device.set_streams(streams)?;
        Ok(device)
    }

    /// Replaces the streams (`setStreams:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"audio streams"`) when `streams` is empty; the
    /// device keeps its streams.
    pub fn set_streams(
        &mut self,
        streams: Vec<VirtioSoundDeviceStreamConfiguration>,
    ) -> Result<&mut Self, VZError> {
        check_streams(&streams)?;
        in_pool!(set_streams_raw(&self.obj, &object_array(&streams)));
        self.streams = streams;
        Ok(self)
    }

    /// The streams, in the order they were given.
    pub fn streams(&self) -> &[VirtioSoundDeviceStreamConfiguration] {
        &self.streams
    }
}
