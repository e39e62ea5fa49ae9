!> The program of benchmarks/bench_oasis.py: one side of a timed exchange,
!! written only against the obridge API, so the same source is linked once with
!! the MPI backend and once with the OASIS backend and both move the same field.
!! ROLE 'ocean' (component 'ocean', ranks split the grid in j) puts field 'f';
!! ROLE 'worker' (component 'worker', ranks split it in i) gets it. Each
!! repetition is NITER exchanges between two barriers on MPI_COMM_WORLD; worker
!! rank 0 prints 'BENCH rep seconds' and checks the last values it received.
!! Usage: bench_pair ROLE NX NY NLEV NITER NREP      (time axis: step k is k seconds)
program bench_pair
   use obridge
   use mpi
   use standin_fields, only: dp, split, fill, mismatches
   implicit none
   integer :: nx, ny, nlev, niter, nrep, comm, rank, nranks, ierr, id, rep, it, step, nbad
   integer :: i0, j0, ni, nj, vals(5), k
   character(len=16) :: role, arg
   real(dp), allocatable :: fld(:, :, :)
   real(dp) :: t0

   call get_command_argument(1, role)
   do k = 1, 5
      call get_command_argument(k + 1, arg)
      read (arg, *) vals(k)
   end do
   nx = vals(1); ny = vals(2); nlev = vals(3); niter = vals(4); nrep = vals(5)
   call obr_init(trim(role), comm)
   call obr_def_time(1, 1._dp)   ! t = step seconds
   call MPI_Comm_rank(comm, rank, ierr)
   call MPI_Comm_size(comm, nranks, ierr)
   i0 = 0; ni = nx; j0 = 0; nj = ny
   if (role == 'ocean') call split(ny, nranks, rank, j0, nj)
   if (role /= 'ocean') call split(nx, nranks, rank, i0, ni)
   call obr_def_partition(nx, ny, i0, j0, ni, nj)
   call obr_def_field('f', merge(OBR_OUT, OBR_IN, role == 'ocean'), nlev, id)
   call obr_enddef()
   allocate (fld(ni, nj, nlev))
   call fill(fld, 1, 0, i0, j0)
   step = 0
   do rep = 1, nrep
      call MPI_Barrier(MPI_COMM_WORLD, ierr)
      t0 = MPI_Wtime()
      do it = 1, niter
         if (role == 'ocean') call obr_put(id, step, fld)
         if (role /= 'ocean') call obr_get(id, step, fld)
         step = step + 1
      end do
      call MPI_Barrier(MPI_COMM_WORLD, ierr)
      if (role /= 'ocean' .and. rank == 0) print '(a,i0,1x,es16.8)', 'BENCH ', rep, MPI_Wtime() - t0
   end do
   if (role /= 'ocean') then
      nbad = mismatches(fld, 1, 0, i0, j0)
      if (nbad > 0) call obr_abort('bench_pair: '//'received values differ from the sent field')
   end if
   call obr_finalize()
end program bench_pair
