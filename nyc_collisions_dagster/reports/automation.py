"""When the dashboard is rebuilt: after the lake it reads changed, once nothing it reads is
being built or about to be."""

import dagster as dg

# Like the summary's condition, and it also waits for a summary requested in the same tick, so
# that a changed month rebuilds the page once, from the new summary, and not twice.
lake_changed = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
    & ~dg.AutomationCondition.in_progress()
).with_label("the lake it reads changed")
