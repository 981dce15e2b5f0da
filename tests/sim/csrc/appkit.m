/*
 * A fake AppKit for the window (arcbox_vz::gui): NSApplication, NSWindow, NSEvent and
 * VZVirtualMachineView (over a bare NSView), with Apple's selectors and types, no
 * pixels.
 *
 * - every method is main-thread only and aborts off it, as AppKit misbehaves there;
 *   "main thread" is real: the thread whose id is the process id;
 * - -[NSApplication run] services the main queue (dispatch.c) until stop: has been
 *   called AND an event has been posted after it, as on macOS, where stop: takes effect
 *   only after the next event; a stop: without a posted event hangs the loop, here too;
 * - postEvent:atStart: may be called from any thread (Apple says so) and wakes the
 *   loop;
 * - a window calls its delegate's windowWillClose: when closed while visible; the
 *   delegate is weak (not retained), the content view is retained, the view retains
 *   its virtual machine;
 * - automaticallyReconfiguresDisplay (14.0) is hidden below 14.0 by sim_versions.m,
 *   like the other tsv rows; VZVirtualMachineView itself below 12.0;
 * - windows, views and events are SimObjects, counted by sim_live_objects, so a
 *   scenario that leaks one fails; the shared NSApplication lives for the process;
 * - test hooks: sim_gui_close_window (the user clicks the close button, via the main
 *   queue) and sim_gui_window (what the last window was given).
 */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#import <Foundation/Foundation.h>
#include "sim.h"
#include "sim_objc.h"

static void assert_main(const char *what)
{
    if ((pid_t)syscall(SYS_gettid) != getpid())
        sim_fatal("%s called off the main thread (AppKit is main-thread only)", what);
}

static void noop(void *ctx) { (void)ctx; }

/* ---- NSEvent ---- */

@interface NSEvent : SimObject
{
    NSUInteger _type;
}
@end

@implementation NSEvent
+ (NSEvent *)otherEventWithType:(NSUInteger)type
                       location:(NSPoint)location
                  modifierFlags:(NSUInteger)flags
                      timestamp:(NSTimeInterval)time
                   windowNumber:(NSInteger)windowNumber
                        context:(id)context
                        subtype:(short)subtype
                          data1:(NSInteger)data1
                          data2:(NSInteger)data2
{
    (void)location; (void)flags; (void)time; (void)windowNumber; (void)subtype;
    (void)data1; (void)data2;
    if (context != nil) sim_fatal("+[NSEvent otherEventWithType:...]: context must be nil");
    if (type != 15) sim_fatal("+[NSEvent otherEventWithType:...]: type %lu is not ApplicationDefined", (unsigned long)type);
    NSEvent *event = [[[NSEvent alloc] init] autorelease];
    event->_type = type;
    return event;
}
@end

/* ---- NSApplication ---- */

@interface NSApplication : NSObject
{
    BOOL _stopRequested;
    long _events; /* posted, not yet processed (__atomic builtins) */
    BOOL _running;
}
@end

static NSApplication *shared_app;
/* Whether the last activateIgnoringOtherApps: came while -run was running (after
 * finishLaunching), for sim_gui_window. */
static int activated_while_running;

@implementation NSApplication
+ (NSApplication *)sharedApplication
{
    assert_main("+[NSApplication sharedApplication]");
    if (shared_app == nil) shared_app = [[NSApplication alloc] init];
    return shared_app;
}

- (BOOL)setActivationPolicy:(NSInteger)policy
{
    assert_main("-[NSApplication setActivationPolicy:]");
    return policy >= 0 && policy <= 2;
}

- (void)activateIgnoringOtherApps:(BOOL)flag
{
    (void)flag;
    assert_main("-[NSApplication activateIgnoringOtherApps:]");
    activated_while_running = _running;
}

- (void)run
{
    assert_main("-[NSApplication run]");
    if (_running) sim_fatal("-[NSApplication run] while it is running");
    _running = YES;
    _stopRequested = NO;
    __atomic_store_n(&_events, 0, __ATOMIC_SEQ_CST);
    for (;;) {
        /* Events are "processed" here: stop: takes effect after the next one. */
        if (__atomic_exchange_n(&_events, 0, __ATOMIC_SEQ_CST) > 0 && _stopRequested) break;
        sim_main_queue_run_one();
    }
    _running = NO;
}

- (void)stop:(id)sender
{
    (void)sender;
    assert_main("-[NSApplication stop:]");
    if (_running) _stopRequested = YES;
}

- (void)postEvent:(NSEvent *)event atStart:(BOOL)atStart
{
    (void)atStart;
    if (event == nil) sim_fatal("-[NSApplication postEvent:atStart:] with a nil event");
    __atomic_fetch_add(&_events, 1, __ATOMIC_SEQ_CST);
    dispatch_async_f(&_dispatch_main_q, NULL, noop); /* wake the loop */
}
@end

/* ---- NSView, VZVirtualMachineView ---- */

@interface NSView : SimObject
@end

@implementation NSView
- (instancetype)init
{
    assert_main("-[NSView init]");
    return [super init];
}
@end

@interface VZVirtualMachineView : NSView
{
    id _virtualMachine;
    BOOL _capturesSystemKeys;
    BOOL _automaticallyReconfiguresDisplay;
}
@end

@implementation VZVirtualMachineView
- (id)virtualMachine
{
    assert_main("-[VZVirtualMachineView virtualMachine]");
    return _virtualMachine;
}

- (void)setVirtualMachine:(id)vm
{
    assert_main("-[VZVirtualMachineView setVirtualMachine:]");
    [vm retain];
    [_virtualMachine release];
    _virtualMachine = vm;
}

- (BOOL)capturesSystemKeys
{
    assert_main("-[VZVirtualMachineView capturesSystemKeys]");
    return _capturesSystemKeys;
}

- (void)setCapturesSystemKeys:(BOOL)flag
{
    assert_main("-[VZVirtualMachineView setCapturesSystemKeys:]");
    _capturesSystemKeys = flag;
}

- (BOOL)automaticallyReconfiguresDisplay
{
    assert_main("-[VZVirtualMachineView automaticallyReconfiguresDisplay]");
    return _automaticallyReconfiguresDisplay;
}

- (void)setAutomaticallyReconfiguresDisplay:(BOOL)flag
{
    assert_main("-[VZVirtualMachineView setAutomaticallyReconfiguresDisplay:]");
    _automaticallyReconfiguresDisplay = flag;
}

- (void)dealloc
{
    [_virtualMachine release];
    [super dealloc];
}
@end

/* ---- NSWindow ---- */

/* What the last window was given, for sim_gui_window. */
static struct {
    double rect[4];
    unsigned long style, backing;
    int has_vm, captures, reconfigures, shown, released_when_closed;
    char title[256];
} last;

@interface NSWindow : SimObject
{
    NSRect _frame;
    id _delegate; /* weak */
    id _contentView;
    BOOL _visible;
    BOOL _releasedWhenClosed;
}
@end

static NSWindow *front_window; /* weak: the visible window, for sim_gui_close_window */

@implementation NSWindow
- (instancetype)initWithContentRect:(NSRect)rect
                          styleMask:(NSUInteger)style
                            backing:(NSUInteger)backing
                              defer:(BOOL)defer
{
    (void)defer;
    assert_main("-[NSWindow initWithContentRect:styleMask:backing:defer:]");
    if (backing != 2) sim_fatal("NSWindow: backing %lu is not NSBackingStoreBuffered", (unsigned long)backing);
    self = [super init];
    if (self == nil) return nil;
    _frame = rect;
    _releasedWhenClosed = YES;
    memset(&last, 0, sizeof last);
    last.rect[0] = rect.origin.x;
    last.rect[1] = rect.origin.y;
    last.rect[2] = rect.size.width;
    last.rect[3] = rect.size.height;
    last.style = style;
    last.backing = backing;
    last.released_when_closed = 1;
    return self;
}

- (void)setReleasedWhenClosed:(BOOL)flag
{
    assert_main("-[NSWindow setReleasedWhenClosed:]");
    _releasedWhenClosed = flag;
    last.released_when_closed = flag;
}

- (void)setContentView:(id)view
{
    assert_main("-[NSWindow setContentView:]");
    [view retain];
    [_contentView release];
    _contentView = view;
    if ([view isKindOfClass:[VZVirtualMachineView class]]) {
        VZVirtualMachineView *v = view;
        last.has_vm = [v virtualMachine] != nil;
        last.captures = [v capturesSystemKeys];
        last.reconfigures = [v respondsToSelector:@selector(automaticallyReconfiguresDisplay)]
                                ? [v automaticallyReconfiguresDisplay] : 0;
    }
}

- (void)setTitle:(NSString *)title
{
    assert_main("-[NSWindow setTitle:]");
    if (title == nil) sim_fatal("-[NSWindow setTitle:] with nil");
    strncpy(last.title, [title UTF8String], sizeof last.title - 1);
}

- (void)center { assert_main("-[NSWindow center]"); }

- (void)setDelegate:(id)delegate
{
    assert_main("-[NSWindow setDelegate:]");
    _delegate = delegate;
}

- (void)makeKeyAndOrderFront:(id)sender
{
    (void)sender;
    assert_main("-[NSWindow makeKeyAndOrderFront:]");
    _visible = YES;
    last.shown = 1;
    front_window = self;
}

- (void)close
{
    assert_main("-[NSWindow close]");
    if (!_visible) return;
    _visible = NO;
    if (front_window == self) front_window = nil;
    if ([_delegate respondsToSelector:@selector(windowWillClose:)]) {
        NSNotification *note = [NSNotification notificationWithName:@"NSWindowWillCloseNotification"
                                                             object:self];
        [_delegate performSelector:@selector(windowWillClose:) withObject:note];
    }
    last.shown = 0;
    if (_releasedWhenClosed) [self release];
}

- (void)dealloc
{
    if (front_window == self) front_window = nil;
    [_contentView release];
    [super dealloc];
}
@end

/* The user clicks the close button of the visible window (on the main queue, as
 * AppKit delivers it). */
static void close_front(void *ctx)
{
    (void)ctx;
    [front_window close];
}

void sim_gui_close_window(void)
{
    dispatch_async_f(&_dispatch_main_q, NULL, close_front);
}

/* What the last window was given: its content rect (x, y, width, height), whether
 * its view had a virtual machine, captured system keys and reconfigured the display
 * when it became the content view, whether the window is shown, whether the app was
 * last activated from inside its loop, and its title. */
void sim_gui_window(double rect[4], int flags[5], char *title, size_t title_len)
{
    memcpy(rect, last.rect, sizeof last.rect);
    flags[0] = last.has_vm;
    flags[1] = last.captures;
    flags[2] = last.reconfigures;
    flags[3] = last.shown;
    flags[4] = activated_while_running;
    if (title_len > 0) {
        strncpy(title, last.title, title_len - 1);
        title[title_len - 1] = 0;
    }
}
