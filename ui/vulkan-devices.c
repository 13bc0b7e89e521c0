// SPDX-License-Identifier: MIT
#include "vulkan-devices.h"

#ifdef M3_HAVE_VULKAN
#include <vulkan/vulkan.h>
#endif

static void enumerate_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable) {
    (void)source, (void)data, (void)cancellable;
    g_autoptr(GStrvBuilder) names = g_strv_builder_new();
#ifdef M3_HAVE_VULKAN
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "m3search",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo info = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance instance;
    if (vkCreateInstance(&info, NULL, &instance) == VK_SUCCESS) {
        uint32_t n = 0;
        vkEnumeratePhysicalDevices(instance, &n, NULL);
        VkPhysicalDevice *devices = g_new0(VkPhysicalDevice, n ? n : 1);
        if (vkEnumeratePhysicalDevices(instance, &n, devices) >= VK_SUCCESS)
            for (uint32_t i = 0; i < n; i++) {
                VkPhysicalDeviceProperties p;
                vkGetPhysicalDeviceProperties(devices[i], &p);
                g_strv_builder_add(names, p.deviceName);
            }
        g_free(devices);
        vkDestroyInstance(instance, NULL);
    }
#endif
    g_task_return_pointer(task, g_strv_builder_end(names), (GDestroyNotify)g_strfreev);
}

void m3_vulkan_devices_async(GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user) {
    GTask *task = g_task_new(NULL, cancellable, callback, user);
    g_task_set_return_on_cancel(task, TRUE);
    g_task_run_in_thread(task, enumerate_thread);
    g_object_unref(task);
}

char **m3_vulkan_devices_finish(GAsyncResult *result, GError **error) {
    return g_task_propagate_pointer(G_TASK(result), error);
}
