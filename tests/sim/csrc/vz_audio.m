/*
 * Fake audio (macOS 12): VZVirtioSoundDeviceConfiguration, its input and output
 * stream configurations, and the host's default input source and output sink.
 *
 * Value objects, not queue-bound. From vz-api.tsv: streams is a copy property
 * (shallow) that starts empty; source and sink are strong, nullable and nil by
 * default (nil = the guest records silence / its audio is dropped); sources and sinks
 * are not NSCopying. Apple documents no validation rule for a device without streams
 * (the fake accepts it; arcbox-vz never builds one). Passing an object of the wrong
 * class raises here, as the console port's attachment does (unverified on a Mac).
 */
#include "sim_vz.h"

/* ---- sources and sinks (12.0) ---- */
@implementation VZAudioInputStreamSource
@end

@implementation VZHostAudioInputStreamSource
- (instancetype)init { return [super init]; }
@end

@implementation VZAudioOutputStreamSink
@end

@implementation VZHostAudioOutputStreamSink
- (instancetype)init { return [super init]; }
@end

/* ---- streams (12.0) ---- */
@implementation VZVirtioSoundDeviceStreamConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZVirtioSoundDeviceInputStreamConfiguration
@synthesize source = _source;

- (instancetype)init { return [super init]; }

- (void)setSource:(VZAudioInputStreamSource *)source
{
    if (source != nil && ![source isKindOfClass:[VZAudioInputStreamSource class]])
        SIM_RAISE(@"The source is not a VZAudioInputStreamSource.");
    [source retain];
    [_source release];
    _source = source;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioSoundDeviceInputStreamConfiguration *copy = [super copyWithZone:zone];
    copy.source = _source;
    return copy;
}

- (void)dealloc
{
    [_source release];
    [super dealloc];
}
@end

@implementation VZVirtioSoundDeviceOutputStreamConfiguration
@synthesize sink = _sink;

- (instancetype)init { return [super init]; }

- (void)setSink:(VZAudioOutputStreamSink *)sink
{
    if (sink != nil && ![sink isKindOfClass:[VZAudioOutputStreamSink class]])
        SIM_RAISE(@"The sink is not a VZAudioOutputStreamSink.");
    [sink retain];
    [_sink release];
    _sink = sink;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioSoundDeviceOutputStreamConfiguration *copy = [super copyWithZone:zone];
    copy.sink = _sink;
    return copy;
}

- (void)dealloc
{
    [_sink release];
    [super dealloc];
}
@end

/* ---- the virtio-snd device (12.0) ---- */
@implementation VZAudioDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZVirtioSoundDeviceConfiguration
- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _streams = [[NSArray alloc] init];
    return self;
}

- (NSArray *)streams { return [[_streams retain] autorelease]; }

- (void)setStreams:(NSArray *)streams
{
    if (streams == nil) SIM_RAISE(@"streams must not be nil.");
    for (id stream in streams)
        if (![stream isKindOfClass:[VZVirtioSoundDeviceStreamConfiguration class]])
            SIM_RAISE(@"A stream is not a VZVirtioSoundDeviceStreamConfiguration.");
    NSArray *copy = [streams copy];
    [_streams release];
    _streams = copy;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioSoundDeviceConfiguration *copy = [[[self class] allocWithZone:zone] init];
    NSArray *streams = [[NSArray alloc] initWithArray:_streams copyItems:YES];
    copy.streams = streams;
    [streams release];
    return copy;
}

- (void)dealloc
{
    [_streams release];
    [super dealloc];
}
@end
