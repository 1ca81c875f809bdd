"""Reading what was sent, from maintained data: the home dashboard (`dashboard`), one campaign's report
(`campaign_report`), the message log with keyset paging (`message_log`) and message exports (`message_export`)."""
