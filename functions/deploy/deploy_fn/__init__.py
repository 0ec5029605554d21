"""The deploy function: CloudFormation custom resources that prepare a stage's keys and datastores."""
