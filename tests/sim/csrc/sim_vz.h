/*
 * The fake Virtualization.framework: every class with Apple's selectors and types,
 * taken from vz-api.tsv. BOOL is GCC's unsigned char; dispatch_queue_t parameters are
 * declared `id` because on Apple a dispatch queue is an Objective-C object (encoded
 * '@'). Implementations live in one vz_*.m file per class family.
 */
#ifndef ARCBOX_VZ_SIM_VZ_H
#define ARCBOX_VZ_SIM_VZ_H

#include "sim_objc.h"

/* ---- errors (vz_error.m) ---- */
extern NSString *const VZErrorDomain;
enum {
    VZErrorInternal = 1,
    VZErrorInvalidVirtualMachineConfiguration = 2,
    VZErrorInvalidVirtualMachineState = 3,
    VZErrorInvalidVirtualMachineStateTransition = 4,
    VZErrorInvalidDiskImage = 5,
    VZErrorNetworkError = 7,
    VZErrorNotSupported = 10,
    VZErrorNetworkBlockDeviceNegotiationFailed = 20001,
    VZErrorDeviceAlreadyAttached = 30002,
    VZErrorDeviceNotFound = 30004,
};

/* Every fake class that -validateWithError: should consult implements this. It
 * returns nil when valid, else the failure reason VZ would give. */
@protocol SimValidating
- (NSString *)sim_invalidReason;
@end

/* ---- boot loaders (vz_boot_loader.m) ---- */
@interface VZBootLoader : SimObject <NSCopying>
/* Simulator only, not a VZ selector: what -[VZVirtualMachine startWithCompletionHandler:]
 * must report for this boot loader when the machine starts, or nil to start. VZ reads
 * the kernel and RAM disk at start, not in -validateWithError:. Call it on the VM queue
 * from the start work item, before the state becomes Running; a non-nil result is the
 * NSError (autoreleased) for the completion handler. */
- (NSError *)sim_startError;
@end

/* No SimValidating: nothing about the files is checked by -validateWithError:. */
@interface VZLinuxBootLoader : VZBootLoader
{
    NSURL *_kernelURL;
    NSString *_commandLine;
    NSURL *_initialRamdiskURL;
}
- (instancetype)initWithKernelURL:(NSURL *)kernelURL;
@property (nonatomic, copy) NSURL *kernelURL;
@property (nonatomic, copy) NSString *commandLine;
@property (nonatomic, copy) NSURL *initialRamdiskURL;
@end

@interface VZEFIVariableStore : SimObject
{
    NSURL *_URL;
}
- (instancetype)initWithURL:(NSURL *)URL;
- (instancetype)initCreatingVariableStoreAtURL:(NSURL *)URL
                                       options:(NSUInteger)options
                                         error:(NSError **)error;
@property (nonatomic, readonly, copy) NSURL *URL;
/* Simulator: whether the file holds a store made by initCreating... */
- (BOOL)sim_isUsable;
@end

@interface VZEFIBootLoader : VZBootLoader <SimValidating>
{
    VZEFIVariableStore *_variableStore;
}
- (instancetype)init;
@property (nonatomic, strong) VZEFIVariableStore *variableStore;
@end

/* ---- platform (vz_platform.m) ---- */
@interface VZPlatformConfiguration : SimObject <NSCopying>
@end

@interface VZGenericMachineIdentifier : SimObject <NSCopying>
{
    NSData *_dataRepresentation;
}
- (instancetype)init;
- (instancetype)initWithDataRepresentation:(NSData *)dataRepresentation;
@property (nonatomic, readonly, copy) NSData *dataRepresentation;
@end

@interface VZGenericPlatformConfiguration : VZPlatformConfiguration <SimValidating>
{
    VZGenericMachineIdentifier *_machineIdentifier;
    BOOL _nestedVirtualizationEnabled;
}
- (instancetype)init;
@property (nonatomic, copy) VZGenericMachineIdentifier *machineIdentifier;
+ (BOOL)isNestedVirtualizationSupported;
@property (nonatomic, getter=isNestedVirtualizationEnabled) BOOL nestedVirtualizationEnabled;
@end

/* ---- storage (vz_storage.m) ---- */
@interface VZStorageDeviceAttachment : SimObject
@end

@interface VZStorageDeviceConfiguration : SimObject <NSCopying>
{
    VZStorageDeviceAttachment *_attachment;
}
@property (nonatomic, readonly, strong) VZStorageDeviceAttachment *attachment;
@end

@interface VZDiskImageStorageDeviceAttachment : VZStorageDeviceAttachment
{
    NSURL *_URL;
    BOOL _readOnly;
    NSInteger _cachingMode;
    NSInteger _synchronizationMode;
}
- (instancetype)initWithURL:(NSURL *)URL readOnly:(BOOL)readOnly error:(NSError **)error;
- (instancetype)initWithURL:(NSURL *)URL
                   readOnly:(BOOL)readOnly
                cachingMode:(NSInteger)cachingMode
        synchronizationMode:(NSInteger)synchronizationMode
                      error:(NSError **)error;
@property (nonatomic, readonly, copy) NSURL *URL;
@property (nonatomic, readonly, getter=isReadOnly) BOOL readOnly;
@property (nonatomic, readonly) NSInteger cachingMode;
@property (nonatomic, readonly) NSInteger synchronizationMode;
@end

@interface VZDiskBlockDeviceStorageDeviceAttachment : VZStorageDeviceAttachment
{
    NSFileHandle *_fileHandle;
    BOOL _readOnly;
    NSInteger _synchronizationMode;
}
- (instancetype)initWithFileHandle:(NSFileHandle *)fileHandle
                          readOnly:(BOOL)readOnly
               synchronizationMode:(NSInteger)synchronizationMode
                             error:(NSError **)error;
@property (nonatomic, readonly, strong) NSFileHandle *fileHandle;
@property (nonatomic, readonly, getter=isReadOnly) BOOL readOnly;
@property (nonatomic, readonly) NSInteger synchronizationMode;
@end

@interface VZNetworkBlockDeviceStorageDeviceAttachment : VZStorageDeviceAttachment
{
    NSURL *_URL;
    NSTimeInterval _timeout;
    BOOL _forcedReadOnly;
    NSInteger _synchronizationMode;
    id _delegate;
}
- (instancetype)initWithURL:(NSURL *)URL
                    timeout:(NSTimeInterval)timeout
             forcedReadOnly:(BOOL)forcedReadOnly
        synchronizationMode:(NSInteger)synchronizationMode
                      error:(NSError **)error;
- (instancetype)initWithURL:(NSURL *)URL error:(NSError **)error;
+ (BOOL)validateURL:(NSURL *)URL error:(NSError **)error;
@property (nonatomic, readonly, copy) NSURL *URL;
@property (nonatomic, readonly) NSTimeInterval timeout;
@property (nonatomic, readonly, getter=isForcedReadOnly) BOOL forcedReadOnly;
@property (nonatomic, readonly) NSInteger synchronizationMode;
/* weak in VZ */
@property (nonatomic, assign) id delegate;
@end

@protocol VZNetworkBlockDeviceStorageDeviceAttachmentDelegate <NSObject>
@optional
- (void)attachmentWasConnected:(VZNetworkBlockDeviceStorageDeviceAttachment *)attachment;
- (void)attachment:(VZNetworkBlockDeviceStorageDeviceAttachment *)attachment
    didEncounterError:(NSError *)error;
@end

@interface VZVirtioBlockDeviceConfiguration : VZStorageDeviceConfiguration
{
    NSString *_blockDeviceIdentifier;
}
- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment;
+ (BOOL)validateBlockDeviceIdentifier:(NSString *)blockDeviceIdentifier error:(NSError **)error;
@property (nonatomic, copy) NSString *blockDeviceIdentifier;
@end

@interface VZUSBMassStorageDeviceConfiguration : VZStorageDeviceConfiguration
{
    NSUUID *_uuid;
}
- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment;
@property (nonatomic, copy) NSUUID *uuid;
@end

@interface VZNVMExpressControllerDeviceConfiguration : VZStorageDeviceConfiguration
- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment;
@end

/* ---- network (vz_network.m) ---- */
@interface VZMACAddress : SimObject <NSCopying>
{
    NSString *_string;
    BOOL _isBroadcastAddress;
    BOOL _isMulticastAddress;
    BOOL _isUnicastAddress;
    BOOL _isLocallyAdministeredAddress;
    BOOL _isUniversallyAdministeredAddress;
}
- (instancetype)initWithString:(NSString *)string;
+ (instancetype)randomLocallyAdministeredAddress;
@property (nonatomic, readonly, copy) NSString *string;
@property (nonatomic, readonly) BOOL isBroadcastAddress;
@property (nonatomic, readonly) BOOL isMulticastAddress;
@property (nonatomic, readonly) BOOL isUnicastAddress;
@property (nonatomic, readonly) BOOL isLocallyAdministeredAddress;
@property (nonatomic, readonly) BOOL isUniversallyAdministeredAddress;
@end

@interface VZNetworkDeviceAttachment : SimObject
@end

@interface VZNATNetworkDeviceAttachment : VZNetworkDeviceAttachment
- (instancetype)init;
@end

@interface VZFileHandleNetworkDeviceAttachment : VZNetworkDeviceAttachment <SimValidating>
{
    NSFileHandle *_fileHandle;
    NSInteger _maximumTransmissionUnit;
}
- (instancetype)initWithFileHandle:(NSFileHandle *)fileHandle;
@property (nonatomic, readonly, strong) NSFileHandle *fileHandle;
@property (nonatomic) NSInteger maximumTransmissionUnit;
@end

@interface VZBridgedNetworkInterface : SimObject
{
    NSString *_identifier;
    NSString *_localizedDisplayName;
}
+ (NSArray *)networkInterfaces;
@property (nonatomic, readonly, copy) NSString *identifier;
@property (nonatomic, readonly, copy) NSString *localizedDisplayName;
@end

@interface VZBridgedNetworkDeviceAttachment : VZNetworkDeviceAttachment <SimValidating>
{
    VZBridgedNetworkInterface *_interface;
}
- (instancetype)initWithInterface:(VZBridgedNetworkInterface *)interface;
@property (nonatomic, readonly, strong) VZBridgedNetworkInterface *interface;
@end

@interface VZNetworkDeviceConfiguration : SimObject <NSCopying, SimValidating>
{
    VZMACAddress *_MACAddress;
    VZNetworkDeviceAttachment *_attachment;
}
@property (nonatomic, copy) VZMACAddress *MACAddress;
@property (nonatomic, strong) VZNetworkDeviceAttachment *attachment;
@end

@interface VZVirtioNetworkDeviceConfiguration : VZNetworkDeviceConfiguration
- (instancetype)init;
@end

/* Simulator control: whether the process holds the restricted com.apple.vm.networking
 * entitlement that bridged networking needs. Off by default, as for any binary that
 * Apple has not granted it to. */
void sim_network_set_vm_networking_entitlement(int entitled);

/* ---- directory sharing (vz_directory_sharing.m) ---- */
@interface VZSharedDirectory : SimObject
{
    NSURL *_URL;
    BOOL _readOnly;
}
- (instancetype)initWithURL:(NSURL *)URL readOnly:(BOOL)readOnly;
@property (nonatomic, readonly, copy) NSURL *URL;
@property (nonatomic, readonly, getter=isReadOnly) BOOL readOnly;
@end

@interface VZDirectoryShare : SimObject
@end

@interface VZSingleDirectoryShare : VZDirectoryShare
{
    VZSharedDirectory *_directory;
}
- (instancetype)initWithDirectory:(VZSharedDirectory *)directory;
@property (nonatomic, readonly, strong) VZSharedDirectory *directory;
@end

@interface VZMultipleDirectoryShare : VZDirectoryShare
{
    NSDictionary *_directories;
}
- (instancetype)init;
- (instancetype)initWithDirectories:(NSDictionary *)directories;
@property (nonatomic, readonly, copy) NSDictionary *directories;
+ (BOOL)validateName:(NSString *)name error:(NSError **)error;
+ (NSString *)canonicalizedNameFromName:(NSString *)name;
@end

@interface VZDirectorySharingDeviceConfiguration : SimObject <NSCopying>
@end

@interface VZVirtioFileSystemDeviceConfiguration : VZDirectorySharingDeviceConfiguration <SimValidating>
{
    NSString *_tag;
    VZDirectoryShare *_share;
}
- (instancetype)initWithTag:(NSString *)tag;
+ (BOOL)validateTag:(NSString *)tag error:(NSError **)error;
+ (NSString *)macOSGuestAutomountTag;
@property (nonatomic, copy) NSString *tag;
@property (nonatomic, strong) VZDirectoryShare *share;
@end

/* ---- serial ports (vz_serial.m) ---- */
@interface VZSerialPortAttachment : SimObject
/* Simulator only, not a VZ selector: where the fake guest's console output goes. */
- (void)sim_writeGuestOutput:(NSData *)data;
@end

@interface VZFileHandleSerialPortAttachment : VZSerialPortAttachment
{
    NSFileHandle *_fileHandleForReading;
    NSFileHandle *_fileHandleForWriting;
}
- (instancetype)initWithFileHandleForReading:(NSFileHandle *)fileHandleForReading
                        fileHandleForWriting:(NSFileHandle *)fileHandleForWriting;
@property (nonatomic, readonly, strong) NSFileHandle *fileHandleForReading;
@property (nonatomic, readonly, strong) NSFileHandle *fileHandleForWriting;
@end

@interface VZFileSerialPortAttachment : VZSerialPortAttachment
{
    NSURL *_URL;
    BOOL _append;
    int _fd; /* the file, open for writing while the attachment lives */
}
- (instancetype)initWithURL:(NSURL *)URL append:(BOOL)shouldAppend error:(NSError **)error;
@property (nonatomic, readonly, copy) NSURL *URL;
@property (nonatomic, readonly) BOOL append;
@end

/* vz_console.m (13.0): clipboard sharing over a virtio console port. */
@interface VZSpiceAgentPortAttachment : VZSerialPortAttachment
{
    BOOL _sharesClipboard;
}
- (instancetype)init;
+ (NSString *)spiceAgentPortName;
@property (nonatomic) BOOL sharesClipboard;
@end

@interface VZSerialPortConfiguration : SimObject <NSCopying, SimValidating>
{
    VZSerialPortAttachment *_attachment;
}
@property (nonatomic, strong) VZSerialPortAttachment *attachment;
@end

@interface VZVirtioConsoleDeviceSerialPortConfiguration : VZSerialPortConfiguration
- (instancetype)init;
@end

/* ---- virtio console (vz_console.m) ---- */
@interface VZConsolePortConfiguration : SimObject <NSCopying>
{
    VZSerialPortAttachment *_attachment;
}
@property (nonatomic, strong) VZSerialPortAttachment *attachment;
@end

@interface VZVirtioConsolePortConfiguration : VZConsolePortConfiguration
{
    NSString *_name;
    BOOL _isConsole;
}
- (instancetype)init;
@property (nonatomic, copy) NSString *name;
@property (nonatomic) BOOL isConsole;
@end

@interface VZVirtioConsolePortConfigurationArray : SimObject <NSCopying>
{
    uint32_t _maximumPortCount;
    BOOL _maximumPortCountSet; /* else the count is the highest port index + 1 */
    NSMutableDictionary *_ports; /* NSNumber index -> VZVirtioConsolePortConfiguration */
}
@property (nonatomic) uint32_t maximumPortCount;
- (VZVirtioConsolePortConfiguration *)objectAtIndexedSubscript:(NSUInteger)portIndex;
- (void)setObject:(VZVirtioConsolePortConfiguration *)configuration
    atIndexedSubscript:(NSUInteger)portIndex;
@end

@interface VZConsoleDeviceConfiguration : SimObject <NSCopying>
@end

@interface VZVirtioConsoleDeviceConfiguration : VZConsoleDeviceConfiguration <SimValidating>
{
    VZVirtioConsolePortConfigurationArray *_ports;
}
- (instancetype)init;
@property (nonatomic, readonly, strong) VZVirtioConsolePortConfigurationArray *ports;
@end

/* ---- other devices (vz_devices.m) ---- */
@interface VZSocketDeviceConfiguration : SimObject <NSCopying>
@end
@interface VZVirtioSocketDeviceConfiguration : VZSocketDeviceConfiguration
- (instancetype)init;
@end

@interface VZEntropyDeviceConfiguration : SimObject <NSCopying>
@end
@interface VZVirtioEntropyDeviceConfiguration : VZEntropyDeviceConfiguration
- (instancetype)init;
@end

@interface VZMemoryBalloonDeviceConfiguration : SimObject <NSCopying>
@end
@interface VZVirtioTraditionalMemoryBalloonDeviceConfiguration : VZMemoryBalloonDeviceConfiguration
- (instancetype)init;
@end

@interface VZGraphicsDisplayConfiguration : SimObject <NSCopying>
@end
/* SimValidating: the graphics device asks each of its scanouts. */
@interface VZVirtioGraphicsScanoutConfiguration : VZGraphicsDisplayConfiguration <SimValidating>
{
    NSInteger _widthInPixels;
    NSInteger _heightInPixels;
}
- (instancetype)initWithWidthInPixels:(NSInteger)widthInPixels heightInPixels:(NSInteger)heightInPixels;
@property (nonatomic) NSInteger widthInPixels;
@property (nonatomic) NSInteger heightInPixels;
@end
@interface VZGraphicsDeviceConfiguration : SimObject <NSCopying>
@end
@interface VZVirtioGraphicsDeviceConfiguration : VZGraphicsDeviceConfiguration <SimValidating>
{
    NSArray *_scanouts;
}
- (instancetype)init;
@property (nonatomic, copy) NSArray *scanouts;
@end

@interface VZKeyboardConfiguration : SimObject <NSCopying>
@end
@interface VZUSBKeyboardConfiguration : VZKeyboardConfiguration
- (instancetype)init;
@end

@interface VZPointingDeviceConfiguration : SimObject <NSCopying>
@end
@interface VZUSBScreenCoordinatePointingDeviceConfiguration : VZPointingDeviceConfiguration
- (instancetype)init;
@end

@interface VZUSBControllerConfiguration : SimObject <NSCopying>
{
    NSArray *_usbDevices;
}
@property (nonatomic, copy) NSArray *usbDevices;
@end
@interface VZXHCIControllerConfiguration : VZUSBControllerConfiguration
- (instancetype)init;
@end

/* ---- audio (vz_audio.m) ---- */
@interface VZAudioInputStreamSource : SimObject
@end
@interface VZHostAudioInputStreamSource : VZAudioInputStreamSource
- (instancetype)init;
@end
@interface VZAudioOutputStreamSink : SimObject
@end
@interface VZHostAudioOutputStreamSink : VZAudioOutputStreamSink
- (instancetype)init;
@end
@interface VZVirtioSoundDeviceStreamConfiguration : SimObject <NSCopying>
@end
@interface VZVirtioSoundDeviceInputStreamConfiguration : VZVirtioSoundDeviceStreamConfiguration
{
    VZAudioInputStreamSource *_source;
}
- (instancetype)init;
@property (nonatomic, strong) VZAudioInputStreamSource *source;
@end
@interface VZVirtioSoundDeviceOutputStreamConfiguration : VZVirtioSoundDeviceStreamConfiguration
{
    VZAudioOutputStreamSink *_sink;
}
- (instancetype)init;
@property (nonatomic, strong) VZAudioOutputStreamSink *sink;
@end
@interface VZAudioDeviceConfiguration : SimObject <NSCopying>
@end
@interface VZVirtioSoundDeviceConfiguration : VZAudioDeviceConfiguration
{
    NSArray *_streams;
}
- (instancetype)init;
@property (nonatomic, copy) NSArray *streams;
@end

/* ---- the top-level configuration (vz_configuration.m) ---- */
@interface VZVirtualMachineConfiguration : SimObject <NSCopying, SimValidating>
{
    VZBootLoader *_bootLoader;
    uint64_t _memorySize;
    NSUInteger _CPUCount;
    VZPlatformConfiguration *_platform;
    NSArray *_consoleDevices;
    NSArray *_directorySharingDevices;
    NSArray *_entropyDevices;
    NSArray *_memoryBalloonDevices;
    NSArray *_networkDevices;
    NSArray *_serialPorts;
    NSArray *_socketDevices;
    NSArray *_storageDevices;
    NSArray *_keyboards;
    NSArray *_pointingDevices;
    NSArray *_graphicsDevices;
    NSArray *_usbControllers;
    NSArray *_audioDevices;
}
@property (nonatomic, strong) VZBootLoader *bootLoader;
@property (nonatomic) uint64_t memorySize;
@property (nonatomic) NSUInteger CPUCount;
@property (nonatomic, strong) VZPlatformConfiguration *platform;
@property (nonatomic, copy) NSArray *consoleDevices;
@property (nonatomic, copy) NSArray *directorySharingDevices;
@property (nonatomic, copy) NSArray *entropyDevices;
@property (nonatomic, copy) NSArray *memoryBalloonDevices;
@property (nonatomic, copy) NSArray *networkDevices;
@property (nonatomic, copy) NSArray *serialPorts;
@property (nonatomic, copy) NSArray *socketDevices;
@property (nonatomic, copy) NSArray *storageDevices;
@property (nonatomic, copy) NSArray *keyboards;
@property (nonatomic, copy) NSArray *pointingDevices;
@property (nonatomic, copy) NSArray *graphicsDevices;
@property (nonatomic, copy) NSArray *usbControllers;
@property (nonatomic, copy) NSArray *audioDevices;
- (BOOL)validateWithError:(NSError **)error;
+ (uint64_t)minimumAllowedMemorySize;
+ (uint64_t)maximumAllowedMemorySize;
+ (NSUInteger)minimumAllowedCPUCount;
+ (NSUInteger)maximumAllowedCPUCount;
@end

/* ---- vmnet networks (vz_vmnet.m, vmnet.c; macOS 26) ---- */
typedef struct vmnet_network_s *vmnet_network_ref;
int sim_vmnet_is_network(const void *network);
void sim_vmnet_network_retain(const void *network);
void sim_vmnet_network_release(const void *network);

@interface VZVmnetNetworkDeviceAttachment : VZNetworkDeviceAttachment
{
    vmnet_network_ref _network;
    BOOL _retainsNetwork;
}
- (instancetype)initWithNetwork:(vmnet_network_ref)network;
@property (nonatomic, readonly) vmnet_network_ref network;
@end

#endif
