// SPDX-License-Identifier: MIT
//
// The names of the Vulkan devices on this computer, for the backend choice in the preferences.
// Enumerating creates a Vulkan instance (tens of milliseconds, more with software drivers), so it
// runs on a worker thread. Without Vulkan support in the build the list is empty.
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

void m3_vulkan_devices_async(GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user);
// A NULL-terminated list of device names (free with g_strfreev), or NULL on error / cancellation.
char **m3_vulkan_devices_finish(GAsyncResult *result, GError **error);

G_END_DECLS
