"""The job core: the job record, the pipeline of stages that carries it, and sending a job again."""
