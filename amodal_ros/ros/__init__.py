"""The rclpy node and its glue (parameters, worker, diagnostics); nothing else imports it."""
