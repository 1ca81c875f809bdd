"""What Meta tells us: raw webhook bodies stored before we answer (`intake`), processed in batches
(`processing`): delivery statuses (`statuses`), customer messages (`inbound`), opt-out and opt-in (`opt_out`),
template updates (`template_updates`) and account updates (`account_updates`)."""
