//! Audio (macOS 12): the virtio-snd device, its input and output streams, the host's
//! source and sink, and `set_audio_devices`, in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use arcbox_vz::{
    HostAudioInputStreamSource, HostAudioOutputStreamSink, VirtioSoundDeviceConfiguration,
    VirtioSoundDeviceInputStreamConfiguration, VirtioSoundDeviceOutputStreamConfiguration,
    VirtioSoundDeviceStreamConfiguration as Stream,
};
use common::{TempDir, assert_unsupported, invalid_argument, macos, minimal_config, sim, since};

/// An input stream recording from the host and an output stream playing to it.
fn both_streams() -> Vec<Stream> {
    let mut input = VirtioSoundDeviceInputStreamConfiguration::new().unwrap();
    input.set_source(HostAudioInputStreamSource::new().unwrap());
    let mut output = VirtioSoundDeviceOutputStreamConfiguration::new().unwrap();
    output.set_sink(HostAudioOutputStreamSink::new().unwrap());
    vec![input.into(), output.into()]
}

#[test]
fn every_audio_class_is_unsupported_before_macos_12() {
    sim::scenario(|| {
        if macos("12.0") {
            return;
        }
        assert_unsupported("12.0", HostAudioInputStreamSource::new());
        assert_unsupported("12.0", HostAudioOutputStreamSink::new());
        assert_unsupported("12.0", VirtioSoundDeviceInputStreamConfiguration::new());
        assert_unsupported("12.0", VirtioSoundDeviceOutputStreamConfiguration::new());
        // Whatever the input, even the empty list that is bad input from macOS 12.
        assert_unsupported("12.0", VirtioSoundDeviceConfiguration::new(Vec::new()));
        // An empty list needs no setter: it is not sent, and validation passes.
        let dir = TempDir::new("audio-old");
        let mut config = minimal_config(&dir);
        config.set_audio_devices(Vec::new());
        assert!(config.audio_devices().is_empty());
        config.validate().unwrap();
    });
}

#[test]
fn streams_sources_and_sinks_round_trip() {
    sim::scenario(|| {
        let Some(mut input) = since("12.0", VirtioSoundDeviceInputStreamConfiguration::new())
        else {
            return;
        };
        assert!(input.source().is_none(), "no source by default");
        input.set_source(HostAudioInputStreamSource::new().unwrap());
        assert!(input.source().is_some());
        input.clear_source();
        assert!(input.source().is_none());

        let mut output = VirtioSoundDeviceOutputStreamConfiguration::new().unwrap();
        assert!(output.sink().is_none(), "no sink by default");
        output.set_sink(HostAudioOutputStreamSink::new().unwrap());
        assert!(output.sink().is_some());
        output.clear_sink();
        assert!(output.sink().is_none());

        let mut device =
            VirtioSoundDeviceConfiguration::new(vec![input.into(), output.into()]).unwrap();
        assert!(matches!(
            device.streams(),
            [Stream::Input(_), Stream::Output(_)]
        ));
        device.set_streams(both_streams()).unwrap();
        match device.streams() {
            [Stream::Input(i), Stream::Output(o)] => {
                assert!(i.source().is_some());
                assert!(o.sink().is_some());
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn an_empty_stream_list_is_refused_before_the_framework_sees_it() {
    sim::scenario(|| {
        if !macos("12.0") {
            return; // Unsupported: every_audio_class_is_unsupported_before_macos_12
        }
        let (argument, reason) =
            invalid_argument(VirtioSoundDeviceConfiguration::new(Vec::new()).unwrap_err());
        assert_eq!(argument, "audio streams");
        assert!(reason.contains("at least one"), "{reason}");

        // Replacing the streams with nothing is refused too, and the device keeps them.
        let mut device = VirtioSoundDeviceConfiguration::new(both_streams()).unwrap();
        let (argument, _) = invalid_argument(device.set_streams(Vec::new()).unwrap_err());
        assert_eq!(argument, "audio streams");
        assert_eq!(device.streams().len(), 2);
    });
}

#[test]
fn streams_without_a_source_or_sink_are_valid_and_build() {
    sim::scenario(|| {
        let Some(input) = since("12.0", VirtioSoundDeviceInputStreamConfiguration::new()) else {
            return;
        };
        let output = VirtioSoundDeviceOutputStreamConfiguration::new().unwrap();
        let dir = TempDir::new("audio-silent");
        let mut config = minimal_config(&dir);
        config.set_audio_devices(vec![
            VirtioSoundDeviceConfiguration::new(vec![input.into()]).unwrap(),
            VirtioSoundDeviceConfiguration::new(vec![output.into()]).unwrap(),
        ]);
        assert_eq!(config.audio_devices().len(), 2);
        config.validate().unwrap();
        drop(config.build().unwrap());
    });
}

#[test]
fn one_device_with_both_directions_validates_builds_and_runs() {
    sim::scenario(|| {
        if !macos("12.0") {
            return;
        }
        let dir = TempDir::new("audio-both");
        let mut config = minimal_config(&dir);
        config.set_audio_devices(vec![
            VirtioSoundDeviceConfiguration::new(both_streams()).unwrap(),
        ]);
        config.validate().unwrap();
        let vm = config.build().unwrap();
        common::block_on(vm.start()).unwrap();
        common::stop_vm(&vm);
    });
}
