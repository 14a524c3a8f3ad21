// How Ginjou wires a `Realtime` provider into its Vue hooks (../shared/reference/contracts.md §2):
// Ginjou itself is not on the npm registry reachable here, so this stand-in calls the provider exactly
// as Ginjou's `useSubscribe` does: `subscribe(props)` returns a key synchronously, stored as a string;
// any change of channel, params or enabled unsubscribes with that key first, then subscribes again;
// in "auto" mode an event invalidates the hook's queries, in "manual" mode it only calls back.
import { onScopeDispose, toValue, watch } from "vue";

export function useSubscribe(realtime, { channel, actions, params, enabled = true, mode = "auto", invalidate, onEvent }) {
  let key = null;
  const stop = watch(
    () => ({ channel: toValue(channel), params: toValue(params), enabled: toValue(enabled) }),
    (now) => {
      if (key !== null) realtime.unsubscribe?.(key);
      key = null;
      if (!now.enabled) return;
      key = String(
        realtime.subscribe({
          channel: now.channel,
          actions: toValue(actions) ?? ["*"],
          params: now.params,
          callback: (event) => {
            if (mode === "auto") invalidate?.(event);
            onEvent?.(event);
          },
        }),
      );
    },
    { immediate: true, deep: true },
  );
  onScopeDispose(() => {
    stop();
    if (key !== null) realtime.unsubscribe?.(key);
  });
}
