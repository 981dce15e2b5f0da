/*
 * The fake runtime classes: VZVirtualMachine, its runtime devices and vsock, and the
 * fake guest behind them. Every VM-bound method asserts it runs on the VM's queue,
 * as Virtualization.framework does (dispatch_assert_queue), except where Apple
 * documents otherwise (+isSupported, init).
 */
#ifndef ARCBOX_VZ_SIM_VZ_RUNTIME_H
#define ARCBOX_VZ_SIM_VZ_RUNTIME_H

#include <pthread.h>
#include "sim_vz.h"

struct sim_connection;
struct pending;
struct power_off_timer;

enum {
    VZVirtualMachineStateStopped = 0,
    VZVirtualMachineStateRunning = 1,
    VZVirtualMachineStatePaused = 2,
    VZVirtualMachineStateError = 3,
    VZVirtualMachineStateStarting = 4,
    VZVirtualMachineStatePausing = 5,
    VZVirtualMachineStateResuming = 6,
    VZVirtualMachineStateStopping = 7,
};

@class VZVirtualMachine;
@class SimGuest;

@protocol VZVirtioConsoleDeviceDelegate <NSObject>
@optional
- (void)consoleDevice:(id)consoleDevice didOpenPort:(id)consolePort;
- (void)consoleDevice:(id)consoleDevice didClosePort:(id)consolePort;
@end

@protocol VZVirtualMachineDelegate <NSObject>
@optional
- (void)guestDidStopVirtualMachine:(VZVirtualMachine *)virtualMachine;
- (void)virtualMachine:(VZVirtualMachine *)virtualMachine didStopWithError:(NSError *)error;
- (void)virtualMachine:(VZVirtualMachine *)virtualMachine
                  networkDevice:(id)networkDevice
    attachmentWasDisconnectedWithError:(NSError *)error;
@end

/* ---- vsock (vz_socket.m) ---- */
@class VZVirtioSocketListener;
@class VZVirtioSocketConnection;
@class VZVirtioSocketDevice;

@protocol VZVirtioSocketListenerDelegate <NSObject>
@optional
- (BOOL)listener:(VZVirtioSocketListener *)listener
    shouldAcceptNewConnection:(VZVirtioSocketConnection *)connection
             fromSocketDevice:(VZVirtioSocketDevice *)socketDevice;
@end

@interface VZVirtioSocketListener : SimObject
{
    id _delegate;
}
@property (nonatomic, assign) id<VZVirtioSocketListenerDelegate> delegate; /* weak in VZ */
@end

@interface VZVirtioSocketConnection : SimObject
{
    uint32_t _destinationPort;
    uint32_t _sourcePort;
    int _fileDescriptor;
}
@property (nonatomic, readonly) uint32_t destinationPort;
@property (nonatomic, readonly) uint32_t sourcePort;
@property (nonatomic, readonly) int fileDescriptor;
- (void)close;
- (instancetype)sim_initWithFileDescriptor:(int)fd source:(uint32_t)source destination:(uint32_t)dest;
@end

@interface VZSocketDevice : SimObject
@end

@interface VZVirtioSocketDevice : VZSocketDevice
{
    VZVirtualMachine *_machine; /* unretained: the VM owns its devices */
    NSMutableDictionary *_listeners;
}
- (void)setSocketListener:(VZVirtioSocketListener *)listener forPort:(uint32_t)port;
- (void)removeSocketListenerForPort:(uint32_t)port;
- (void)connectToPort:(uint32_t)port
    completionHandler:(void (^)(VZVirtioSocketConnection *connection, NSError *error))completionHandler;
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine;
/* Guest -> host: offers a connection to the listener on `port`; returns the guest's end
 * or -1 when nobody listens or the delegate refuses. On the VM queue. */
- (int)sim_guestConnectToPort:(uint32_t)port;
@end

/* ---- other runtime devices (vz_runtime_devices.m) ---- */
@interface VZMemoryBalloonDevice : SimObject
@end

@interface VZVirtioTraditionalMemoryBalloonDevice : VZMemoryBalloonDevice
{
    VZVirtualMachine *_machine;
    unsigned long long _targetVirtualMachineMemorySize;
}
@property (nonatomic) unsigned long long targetVirtualMachineMemorySize;
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine;
@end

@interface VZDirectorySharingDevice : SimObject
@end

@interface VZVirtioFileSystemDevice : VZDirectorySharingDevice
{
    VZVirtualMachine *_machine;
    NSString *_tag;
    VZDirectoryShare *_share;
}
@property (nonatomic, readonly, copy) NSString *tag;
@property (nonatomic, strong) VZDirectoryShare *share;
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioFileSystemDeviceConfiguration *)configuration;
@end

@interface VZNetworkDevice : SimObject
{
    VZVirtualMachine *_machine;
    VZNetworkDeviceAttachment *_attachment;
}
@property (nonatomic, strong) VZNetworkDeviceAttachment *attachment;
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                         attachment:(VZNetworkDeviceAttachment *)attachment;
@end

@interface VZVirtioConsolePort : SimObject
{
    VZVirtualMachine *_machine;
    NSString *_name;
    VZSerialPortAttachment *_attachment;
}
@property (nonatomic, readonly, copy) NSString *name;
@property (nonatomic, strong) VZSerialPortAttachment *attachment;
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsolePortConfiguration *)configuration;
@end

@interface VZVirtioConsolePortArray : SimObject
{
    VZVirtualMachine *_machine;
    NSMutableDictionary *_ports;
    uint32_t _maximumPortCount;
}
@property (nonatomic, readonly) uint32_t maximumPortCount;
- (VZVirtioConsolePort *)objectAtIndexedSubscript:(NSUInteger)portIndex;
- (VZVirtioConsolePort *)sim_portAtIndex:(NSUInteger)portIndex; /* no queue check */
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsoleDeviceConfiguration *)configuration;
@end

@interface VZConsoleDevice : SimObject
@end

@interface VZVirtioConsoleDevice : VZConsoleDevice
{
    VZVirtualMachine *_machine;
    VZVirtioConsolePortArray *_ports;
    id _delegate;
    NSMutableSet *_openPorts;      /* NSNumber port indexes the guest has open */
    NSMutableArray *_pendingEvents; /* @[port, @(open)], oldest first */
}
@property (nonatomic, readonly, strong) VZVirtioConsolePortArray *ports;
@property (nonatomic, assign) id delegate; /* weak in VZ */
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsoleDeviceConfiguration *)configuration;
/* Simulator internals (issue 11 item 3): the guest opens or closes port `index`; the
 * delegate hears of it later on the VM queue, in order. Returns -1 when there is no
 * port at `index`, 0 when it already was in that state, 1 when an event is on its
 * way. */
- (long)sim_guestSetPort:(NSUInteger)index open:(BOOL)open;
/* The guest booted (opens every named port) or halted (closes every open port). */
- (void)sim_guestBooted;
- (void)sim_guestHalted;
- (void)sim_deliverOldestEvent;
@end

@interface VZUSBController : SimObject
{
    VZVirtualMachine *_machine;
    NSMutableArray *_usbDevices;
}
@property (nonatomic, readonly, copy) NSArray *usbDevices;
- (void)attachDevice:(id)device completionHandler:(void (^)(NSError *error))completionHandler;
- (void)detachDevice:(id)device completionHandler:(void (^)(NSError *error))completionHandler;
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine;
@end

@interface VZXHCIController : VZUSBController
@end

@interface VZStorageDevice : SimObject
@end

@interface VZUSBMassStorageDevice : VZStorageDevice
{
    VZUSBMassStorageDeviceConfiguration *_configuration;
    VZUSBController *_usbController;
    NSUUID *_uuid;
}
- (instancetype)initWithConfiguration:(VZUSBMassStorageDeviceConfiguration *)configuration;
@property (nonatomic, readonly, assign) VZUSBController *usbController; /* weak in VZ */
@property (nonatomic, readonly, copy) NSUUID *uuid;
- (void)sim_setController:(VZUSBController *)controller;
@end

@interface VZVirtualMachineStartOptions : SimObject
@end

/* ---- the virtual machine (vz_virtual_machine.m) ---- */
@interface VZVirtualMachine : SimObject
{
    VZVirtualMachineConfiguration *_configuration;
    dispatch_queue_t _queue;
    NSInteger _state;
    id<VZVirtualMachineDelegate> _delegate;
    NSArray *_socketDevices;
    NSArray *_memoryBalloonDevices;
    NSArray *_directorySharingDevices;
    NSArray *_networkDevices;
    NSArray *_consoleDevices;
    NSArray *_usbControllers;
    NSArray *_graphicsDevices; /* 14.0; vz_graphics_runtime.m */
    SimGuest *_guest;
    BOOL _stopRequested;
    long _callbackDepth; /* framework callbacks running now (VM queue only) */
    long _internalRefs;  /* references the framework itself holds (atomic) */
    struct pending *_deferred; /* callbacks waiting for the client's next call */
}
+ (BOOL)isSupported;
/* References the fake framework takes on itself; the rest are the client's. */
- (id)sim_hold;
- (void)sim_unhold;
/* Brackets every completion handler, delegate call and notification the fake makes. */
- (void)sim_enterCallback;
- (void)sim_exitCallback;
/* References the client holds (all but the framework's own). */
- (long)sim_clientReferences;
- (void)sim_defer:(struct pending *)p;
- (void)sim_undefer:(struct pending *)p;
- (void)sim_flushDeferred;
- (void)sim_applyState:(NSInteger)state;
- (void)sim_stopInState:(NSInteger)state telling:(void (^)(NSError *))tell;
- (instancetype)initWithConfiguration:(VZVirtualMachineConfiguration *)configuration queue:(id)queue;
@property (nonatomic, readonly) NSInteger state;
@property (nonatomic, assign) id<VZVirtualMachineDelegate> delegate; /* weak in VZ */
@property (nonatomic, readonly) BOOL canStart;
@property (nonatomic, readonly) BOOL canStop;
@property (nonatomic, readonly) BOOL canPause;
@property (nonatomic, readonly) BOOL canResume;
@property (nonatomic, readonly) BOOL canRequestStop;
@property (nonatomic, readonly, copy) NSArray *socketDevices;
@property (nonatomic, readonly, copy) NSArray *memoryBalloonDevices;
@property (nonatomic, readonly, copy) NSArray *directorySharingDevices;
@property (nonatomic, readonly, copy) NSArray *networkDevices;
@property (nonatomic, readonly, copy) NSArray *consoleDevices;
@property (nonatomic, readonly, copy) NSArray *usbControllers;
- (void)startWithCompletionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (void)startWithOptions:(VZVirtualMachineStartOptions *)options
       completionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (void)stopWithCompletionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (void)pauseWithCompletionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (void)resumeWithCompletionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (BOOL)requestStopWithError:(NSError **)error;

/* Simulator internals. */
- (dispatch_queue_t)sim_queue;
- (VZVirtualMachineConfiguration *)sim_configuration;
- (void)sim_assertQueue:(const char *)what;
- (SimGuest *)sim_guest;
/* The guest powered itself off (after requestStop, or `poweroff` on its console). */
- (void)sim_guestDidPowerOff;
/* The guest died with an error: state Error, delegate didStopWithError:. */
- (void)sim_crashWithCode:(NSInteger)code reason:(NSString *)reason;
- (void)sim_disconnectNetworkDevice:(NSUInteger)index;
@end

/* The guest opens (open != 0) or closes port `port` of console device `device` of the
 * last started running VM (issue 11 item 3); -1 when there is no such VM or port. */
long sim_console_port_set_open(unsigned device, unsigned port, int open);

/* ---- the fake guest (sim_guest.m) ---- */
@interface SimGuest : SimObject
{
    VZVirtualMachine *_machine; /* unretained: the VM owns its guest */
    int _consoleIn;
    id _console; /* the first serial port's attachment, while booted */
    pthread_t _consoleThread;
    BOOL _hasConsoleThread;
    volatile int _halted, _paused;
    pthread_mutex_t _lock;
    pthread_cond_t _cond;
    struct sim_connection *_connections;
    long _liveConnections;
    struct power_off_timer *_powerOffTimer; /* this boot's, if armed (VM queue only) */
}
- (instancetype)initWithMachine:(VZVirtualMachine *)machine;
/* Boots: prints the banner on the first serial port and serves its console. */
- (void)boot;
/* Stops every guest thread and closes every guest-side descriptor. */
- (void)halt;
- (BOOL)listensOnPort:(uint32_t)port;
/* Takes ownership of the guest end of a host-initiated vsock connection. */
- (void)serveConnection:(int)fd port:(uint32_t)port;
/* The same for a connection the guest opened: `greeting` is sent first. */
- (void)sim_serveConnection:(int)fd port:(uint32_t)port greeting:(const char *)greeting;
- (void)setPaused:(BOOL)paused;
@end

/* VM registry for the control hooks (vz_virtual_machine.m). */
void sim_register_running(VZVirtualMachine *vm);
void sim_unregister_running(VZVirtualMachine *vm);

/* On the VM queue once it runs: the NBD clients of its storage devices connect
 * (vz_storage.m). */
void sim_storage_vm_started(VZVirtualMachine *vm);

/* The runtime graphics devices for a VM's graphics device configurations
 * (vz_graphics_runtime.m); +1. */
NSArray *sim_graphics_devices(VZVirtualMachine *vm, NSArray *configurations);

#endif
