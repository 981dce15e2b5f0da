/*
 * The Apple-silicon-only part of the fake framework: Rosetta for Linux
 * (vz_rosetta.m), save/restore (vz_save_restore.m) and the macOS start options
 * (vz_start_options.m). On a Mac these exist only on arm64 (`#ifdef __arm64__` in
 * Apple's headers); the simulator, an x86_64 Linux program, plays an Apple-silicon Mac
 * so that the crate's arm64 code paths run in tests.
 *
 * Selectors and types: vz-api.tsv. Behaviour: Apple's headers (VZVirtualMachine.h,
 * VZLinuxRosettaDirectoryShare.h, VZLinuxRosetta*CachingOptions.h,
 * VZMacOSVirtualMachineStartOptions.h), cited where each rule is enforced.
 */
#ifndef ARCBOX_VZ_SIM_VZ_ARM64_H
#define ARCBOX_VZ_SIM_VZ_ARM64_H

#include "sim_vz_runtime.h"

/* VZVirtualMachineState values added in macOS 14 (vz-api.tsv, `state` row). */
enum {
    SimVZVirtualMachineStateSaving = 8,
    SimVZVirtualMachineStateRestoring = 9,
};

/* VZErrorCode values added in macOS 14 (vz-api.tsv enum rows). */
enum {
    SimVZErrorSave = 11,
    SimVZErrorRestore = 12,
};

/* ---- Rosetta (vz_rosetta.m) ---- */

/* VZLinuxRosettaAvailability (vz-api.tsv): NotSupported=0 NotInstalled=1 Installed=2. */
enum {
    SimRosettaNotSupported = 0,
    SimRosettaNotInstalled = 1,
    SimRosettaInstalled = 2,
};

@interface VZLinuxRosettaCachingOptions : SimObject
@end

@interface VZLinuxRosettaUnixSocketCachingOptions : VZLinuxRosettaCachingOptions
{
    NSString *_path;
}
- (instancetype)initWithPath:(NSString *)path error:(NSError **)error;
- (instancetype)init;
@property (nonatomic, readonly, copy) NSString *path;
+ (NSUInteger)maximumPathLength;
@end

@interface VZLinuxRosettaAbstractSocketCachingOptions : VZLinuxRosettaCachingOptions
{
    NSString *_name;
}
- (instancetype)initWithName:(NSString *)name error:(NSError **)error;
@property (nonatomic, readonly, copy) NSString *name;
+ (NSUInteger)maximumNameLength;
@end

@interface VZLinuxRosettaDirectoryShare : VZDirectoryShare
{
    VZLinuxRosettaCachingOptions *_options;
}
- (instancetype)initWithError:(NSError **)error;
+ (void)installRosettaWithCompletionHandler:(void (^)(NSError *error))completionHandler;
+ (NSInteger)availability;
@property (nonatomic, strong) VZLinuxRosettaCachingOptions *options;
@end

/* Control hooks (tests/sim/src/arm64.rs). */
void sim_rosetta_set_availability(long availability);
/* How the next installs end: 0 succeed (Rosetta becomes Installed), > 0 fail with
 * that VZErrorDomain code, -1 the framework releases the handler without calling it. */
void sim_rosetta_set_install_outcome(long outcome);
long sim_rosetta_install_calls(void);
/* The caching options of every live Rosetta share, one line each:
 * "none", "unix:<path>" or "abstract:<name>". Returns the length needed. */
size_t sim_rosetta_describe_shares(char *buffer, size_t size);

/* ---- save/restore (vz_save_restore.m) ---- */

@interface VZVirtualMachineConfiguration (SaveRestore)
- (BOOL)validateSaveRestoreSupportWithError:(NSError **)error;
@end

@interface VZVirtualMachine (SaveRestore)
- (void)saveMachineStateToURL:(NSURL *)saveFileURL
            completionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (void)restoreMachineStateFromURL:(NSURL *)saveFileURL
                 completionHandler:(void (^)(NSError *errorOrNil))completionHandler;
@end

/* Control hooks: the next save (restore) fails with this VZErrorDomain code after
 * the file work, as when the disk fills up or the host refuses (0: no failure). */
void sim_save_fail_next(long code);
void sim_restore_fail_next(long code);

/* ---- start options (vz_start_options.m) ---- */

@interface VZMacOSVirtualMachineStartOptions : VZVirtualMachineStartOptions
{
    BOOL _startUpFromMacOSRecovery;
}
- (instancetype)init;
@property (nonatomic) BOOL startUpFromMacOSRecovery;
@end

/* What the last -startWithOptions:completionHandler: received: 0 nothing yet (or
 * reset), 1 VZVirtualMachineStartOptions, 2 VZMacOSVirtualMachineStartOptions,
 * 3 the same with startUpFromMacOSRecovery = YES. */
long sim_last_start_options(void);
void sim_reset_last_start_options(void);

/* ---- macOS guests, configuration side (vz_macos_guest.m) ---- */

/* The fake restore image format the tests write: a zip local-file-header magic,
 * then a text header, then key=value lines (see vz_macos_guest.m). */
#define SIM_IPSW_MAGIC "PK\x03\x04SIMIPSW1\n"

/* NSOperatingSystemVersion (24 bytes, returned by value). */
typedef struct {
    NSInteger majorVersion;
    NSInteger minorVersion;
    NSInteger patchVersion;
} SimOperatingSystemVersion;

enum {
    SimVZErrorRestoreImageCatalogLoadFailed = 10001,
    SimVZErrorRestoreImageLoadFailed = 10004,
    SimVZErrorInvalidRestoreImage = 10005,
};

@interface VZMacHardwareModel : SimObject <NSCopying>
{
    NSData *_dataRepresentation;
}
- (instancetype)initWithDataRepresentation:(NSData *)dataRepresentation;
@property (nonatomic, readonly, copy) NSData *dataRepresentation;
@property (nonatomic, readonly, getter=isSupported) BOOL supported;
@end

@interface VZMacMachineIdentifier : SimObject <NSCopying>
{
    NSData *_dataRepresentation;
}
- (instancetype)init;
- (instancetype)initWithDataRepresentation:(NSData *)dataRepresentation;
@property (nonatomic, readonly, copy) NSData *dataRepresentation;
@end

@interface VZMacAuxiliaryStorage : SimObject
{
    NSURL *_URL;
}
- (instancetype)initWithURL:(NSURL *)URL;
- (instancetype)initWithContentsOfURL:(NSURL *)URL;
- (instancetype)initCreatingStorageAtURL:(NSURL *)URL
                           hardwareModel:(VZMacHardwareModel *)hardwareModel
                                 options:(NSUInteger)options
                                   error:(NSError **)error;
@property (nonatomic, readonly, copy) NSURL *URL;
@end

@interface VZMacOSConfigurationRequirements : SimObject
{
    VZMacHardwareModel *_hardwareModel;
    NSUInteger _minimumSupportedCPUCount;
    uint64_t _minimumSupportedMemorySize;
}
@property (nonatomic, readonly, copy) VZMacHardwareModel *hardwareModel;
@property (nonatomic, readonly) NSUInteger minimumSupportedCPUCount;
@property (nonatomic, readonly) uint64_t minimumSupportedMemorySize;
@end

@interface VZMacOSRestoreImage : SimObject
{
    NSURL *_URL;
    NSString *_buildVersion;
    SimOperatingSystemVersion _operatingSystemVersion;
    VZMacOSConfigurationRequirements *_requirements;
}
+ (void)loadFileURL:(NSURL *)fileURL
    completionHandler:(void (^)(VZMacOSRestoreImage *restoreImage, NSError *error))completionHandler;
+ (void)fetchLatestSupportedWithCompletionHandler:
    (void (^)(VZMacOSRestoreImage *restoreImage, NSError *error))completionHandler;
@property (nonatomic, readonly, copy) NSURL *URL;
@property (nonatomic, readonly, copy) NSString *buildVersion;
@property (nonatomic, readonly) SimOperatingSystemVersion operatingSystemVersion;
@property (nonatomic, readonly, getter=isSupported) BOOL supported;
@property (nonatomic, readonly, copy) VZMacOSConfigurationRequirements *mostFeaturefulSupportedConfiguration;
@end

@interface VZMacPlatformConfiguration : VZPlatformConfiguration <SimValidating>
{
    VZMacHardwareModel *_hardwareModel;
    VZMacMachineIdentifier *_machineIdentifier;
    VZMacAuxiliaryStorage *_auxiliaryStorage;
}
- (instancetype)init;
@property (nonatomic, copy) VZMacHardwareModel *hardwareModel;
@property (nonatomic, copy) VZMacMachineIdentifier *machineIdentifier;
@property (nonatomic, strong) VZMacAuxiliaryStorage *auxiliaryStorage;
@end

@interface VZMacOSBootLoader : VZBootLoader
- (instancetype)init;
@end

/* Mac graphics (12.0, declared on both architectures on a Mac), Mac keyboard (14.0)
 * and trackpad (13.0) (vz_macos_guest.m). */
@interface VZMacGraphicsDisplayConfiguration : VZGraphicsDisplayConfiguration
{
    NSInteger _widthInPixels;
    NSInteger _heightInPixels;
    NSInteger _pixelsPerInch;
}
- (instancetype)initWithWidthInPixels:(NSInteger)widthInPixels
                       heightInPixels:(NSInteger)heightInPixels
                        pixelsPerInch:(NSInteger)pixelsPerInch;
@property (nonatomic) NSInteger widthInPixels;
@property (nonatomic) NSInteger heightInPixels;
@property (nonatomic) NSInteger pixelsPerInch;
@end

@interface VZMacGraphicsDeviceConfiguration : VZGraphicsDeviceConfiguration <SimValidating>
{
    NSArray *_displays;
}
- (instancetype)init;
@property (nonatomic, copy) NSArray *displays;
@end

@interface VZMacKeyboardConfiguration : VZKeyboardConfiguration
- (instancetype)init;
@end

@interface VZMacTrackpadConfiguration : VZPointingDeviceConfiguration
- (instancetype)init;
@end

/* Control hooks (tests/sim/src/arm64.rs): how many restore images were loaded or
 * fetched (handlers answered), and make the next fetch fail with a code (0: none). */
long sim_restore_image_requests(void);
void sim_restore_image_fetch_fail_next(long code);

/* ---- the installer (vz_macos_installer.m) ---- */

@interface VZMacOSInstaller : SimObject
{
    VZVirtualMachine *_virtualMachine; /* retained: "the installer keeps it alive" */
    NSURL *_restoreImageURL;
    NSProgress *_progress;
    BOOL _installCalled;
}
- (instancetype)initWithVirtualMachine:(VZVirtualMachine *)virtualMachine
                       restoreImageURL:(NSURL *)restoreImageURL;
- (void)installWithCompletionHandler:(void (^)(NSError *error))completionHandler;
@property (nonatomic, readonly, strong) NSProgress *progress;
@property (nonatomic, readonly, strong) VZVirtualMachine *virtualMachine;
@property (nonatomic, readonly, copy) NSURL *restoreImageURL;
@end

/* Control hooks (tests/sim/src/arm64.rs): make the next install fail half way with a
 * VZErrorDomain code (0: none); installs begun; the build an install wrote to a disk
 * image ("" when none), into buffer, returning the length needed. */
void sim_installer_fail_next(long code);
long sim_installer_installs(void);
size_t sim_installed_build(const char *disk_path, char *buffer, size_t size);

#endif
